"""Echo Hub: a real-time chat-and-feed server."""
