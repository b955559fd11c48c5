"""Who sees what: profiles, posts, feeds, follows and communities."""

from __future__ import annotations

import pytest

from server.domain.errors import DomainError, Forbidden
from server.domain.visibility import (
    CommunityAccess,
    Relation,
    can_post_in_community,
    can_read_community,
    can_see_post,
    can_view_profile,
    check_can_follow,
    shows_in_feed,
)

AUTHOR = "u-author"
VIEWER = "u-viewer"

# Viewers, as (viewer id, relation seen from the viewer).
VIEWERS: dict[str, tuple[str, Relation]] = {
    "author": (AUTHOR, Relation()),
    "friend": (VIEWER, Relation(follows=True, followed_by=True)),
    "follower": (VIEWER, Relation(follows=True)),  # viewer follows, author doesn't
    "followed": (VIEWER, Relation(followed_by=True)),  # author follows viewer only
    "stranger": (VIEWER, Relation()),
    "blocked_by_author": (VIEWER, Relation(blocked_by=True)),
    "blocker_of_author": (VIEWER, Relation(blocks=True)),
    "friend_blocked": (VIEWER, Relation(follows=True, followed_by=True, blocked_by=True)),
    "muted": (VIEWER, Relation(follows=True, mutes=True)),
    "muted_friend": (VIEWER, Relation(follows=True, followed_by=True, mutes=True)),
}

# viewer, visibility, can see the post, shows in the viewer's feeds
POST_TABLE = [
    ("author", "public", True, True),
    ("author", "friends", True, True),
    ("friend", "public", True, True),
    ("friend", "friends", True, True),
    ("follower", "public", True, True),
    ("follower", "friends", False, False),
    ("followed", "public", True, True),
    ("followed", "friends", False, False),
    ("stranger", "public", True, True),
    ("stranger", "friends", False, False),
    ("blocked_by_author", "public", False, False),
    ("blocked_by_author", "friends", False, False),
    ("blocker_of_author", "public", False, False),
    ("blocker_of_author", "friends", False, False),
    ("friend_blocked", "friends", False, False),
    ("muted", "public", True, False),
    ("muted", "friends", False, False),
    ("muted_friend", "friends", True, False),
    ("stranger", "private", False, False),  # unknown visibility: fail closed
]


@pytest.mark.parametrize(("viewer", "visibility", "sees", "in_feed"), POST_TABLE)
def test_post_visibility(viewer: str, visibility: str, sees: bool, in_feed: bool) -> None:
    viewer_id, rel = VIEWERS[viewer]
    assert can_see_post(viewer_id, AUTHOR, visibility, rel) is sees
    assert shows_in_feed(viewer_id, AUTHOR, visibility, rel) is in_feed


def test_author_is_never_hidden_from_themselves() -> None:
    rel = Relation(blocks=True, blocked_by=True, mutes=True)
    closed = CommunityAccess("approval", is_member=False)
    assert can_see_post(AUTHOR, AUTHOR, "friends", rel, closed)
    assert shows_in_feed(AUTHOR, AUTHOR, "friends", rel, closed)


OPEN_MEMBER = CommunityAccess("open", is_member=True)
OPEN_OUTSIDER = CommunityAccess("open", is_member=False)
APPROVAL_MEMBER = CommunityAccess("approval", is_member=True)
APPROVAL_OUTSIDER = CommunityAccess("approval", is_member=False)


@pytest.mark.parametrize(
    ("access", "read", "post"),
    [
        (OPEN_MEMBER, True, True),
        (OPEN_OUTSIDER, True, False),
        (APPROVAL_MEMBER, True, True),
        (APPROVAL_OUTSIDER, False, False),
        (CommunityAccess("secret", is_member=False), False, False),
    ],
)
def test_community_access(access: CommunityAccess, read: bool, post: bool) -> None:
    assert can_read_community(access) is read
    assert can_post_in_community(access) is post


@pytest.mark.parametrize(
    ("viewer", "visibility", "access", "sees"),
    [
        ("stranger", "public", OPEN_OUTSIDER, True),
        ("stranger", "public", APPROVAL_OUTSIDER, False),
        ("stranger", "public", APPROVAL_MEMBER, True),
        ("stranger", "friends", APPROVAL_MEMBER, False),
        ("friend", "friends", APPROVAL_MEMBER, True),
        ("friend", "friends", APPROVAL_OUTSIDER, False),
        ("friend", "public", APPROVAL_OUTSIDER, False),
        ("blocked_by_author", "public", OPEN_MEMBER, False),
        ("author", "public", APPROVAL_OUTSIDER, True),
    ],
)
def test_community_posts(viewer: str, visibility: str, access: CommunityAccess, sees: bool) -> None:
    viewer_id, rel = VIEWERS[viewer]
    assert can_see_post(viewer_id, AUTHOR, visibility, rel, access) is sees
    assert shows_in_feed(viewer_id, AUTHOR, visibility, rel, access) is sees


@pytest.mark.parametrize(
    ("viewer", "sees"),
    [
        ("author", True),
        ("friend", True),
        ("stranger", True),
        ("muted", True),
        ("blocked_by_author", False),
        ("friend_blocked", False),
        ("blocker_of_author", True),  # the blocker may still look at whom they blocked
    ],
)
def test_profile_visibility(viewer: str, sees: bool) -> None:
    viewer_id, rel = VIEWERS[viewer]
    assert can_view_profile(viewer_id, AUTHOR, rel) is sees


@pytest.mark.parametrize(
    ("rel", "friends"),
    [
        (Relation(), False),
        (Relation(follows=True), False),
        (Relation(followed_by=True), False),
        (Relation(follows=True, followed_by=True), True),
    ],
)
def test_friends_is_mutual_follow(rel: Relation, friends: bool) -> None:
    assert rel.friends is friends


@pytest.mark.parametrize(
    ("viewer_id", "target_id", "rel", "error", "code"),
    [
        (VIEWER, AUTHOR, Relation(), None, None),
        (VIEWER, AUTHOR, Relation(followed_by=True, mutes=True), None, None),
        (VIEWER, VIEWER, Relation(), DomainError, "cannot_follow_self"),
        (VIEWER, AUTHOR, Relation(blocked_by=True), Forbidden, "blocked"),
        (VIEWER, AUTHOR, Relation(blocks=True), Forbidden, "blocked"),
    ],
)
def test_check_can_follow(
    viewer_id: str,
    target_id: str,
    rel: Relation,
    error: type[DomainError] | None,
    code: str | None,
) -> None:
    if error is None:
        check_can_follow(viewer_id, target_id, rel)
        return
    with pytest.raises(DomainError) as excinfo:
        check_can_follow(viewer_id, target_id, rel)
    assert type(excinfo.value) is error
    assert (excinfo.value.code, excinfo.value.field) == (code, "handle")
