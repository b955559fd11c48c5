"""Who sees what: pure predicates over the relation between a viewer and an author.

Owns the rules of SPEC "Social graph", post visibility and community reading. The
caller loads the `Relation` (always from the viewer's side) and any
`CommunityAccess`; nothing here touches the store.
"""

from __future__ import annotations

from dataclasses import dataclass

from server.domain.errors import DomainError, Forbidden

__all__ = [
    "CommunityAccess",
    "Relation",
    "can_post_in_community",
    "can_read_community",
    "can_see_post",
    "can_view_profile",
    "check_can_follow",
    "shows_in_feed",
]


@dataclass(frozen=True, slots=True)
class Relation:
    """The graph between a viewer and another member, seen from the viewer."""

    follows: bool = False  # viewer follows author
    followed_by: bool = False  # author follows viewer
    blocks: bool = False  # viewer blocked author
    blocked_by: bool = False  # author blocked viewer
    mutes: bool = False  # viewer muted author

    @property
    def friends(self) -> bool:
        """Mutual follow (mixi's "mai-miku")."""
        return self.follows and self.followed_by

    @property
    def blocked_either_way(self) -> bool:
        return self.blocks or self.blocked_by


@dataclass(frozen=True, slots=True)
class CommunityAccess:
    """What the viewer's standing in a community is."""

    join_policy: str  # "open" or "approval"
    is_member: bool


def can_read_community(access: CommunityAccess) -> bool:
    """Members read any community; everyone signed in reads an `open` one."""
    return access.is_member or access.join_policy == "open"


def can_post_in_community(access: CommunityAccess) -> bool:
    """Only members post in a community, whatever its policy."""
    return access.is_member


def can_view_profile(viewer_id: str, owner_id: str, rel: Relation) -> bool:
    """Everyone signed in sees a profile, except members the owner has blocked."""
    return viewer_id == owner_id or not rel.blocked_by


def can_see_post(
    viewer_id: str,
    author_id: str,
    visibility: str,
    rel: Relation,
    community: CommunityAccess | None = None,
) -> bool:
    """Whether the viewer may see a post at all (by id, in a list, live).

    The author always sees their own posts. Otherwise: never across a block in
    either direction; `friends` posts need a mutual follow; a community post also
    needs `can_read_community`. Unknown visibilities are shown to no one else.
    """
    if viewer_id == author_id:
        return True
    if rel.blocked_either_way:
        return False
    if visibility == "friends":
        if not rel.friends:
            return False
    elif visibility != "public":
        return False
    return community is None or can_read_community(community)


def shows_in_feed(
    viewer_id: str,
    author_id: str,
    visibility: str,
    rel: Relation,
    community: CommunityAccess | None = None,
) -> bool:
    """`can_see_post`, minus authors the viewer muted (mutes only hide from one's
    own feeds; a muted author's posts stay reachable by link)."""
    if viewer_id != author_id and rel.mutes:
        return False
    return can_see_post(viewer_id, author_id, visibility, rel, community)


def check_can_follow(viewer_id: str, target_id: str, rel: Relation) -> None:
    """Raise `cannot_follow_self` (400) or `blocked` (403), field `handle`."""
    if viewer_id == target_id:
        raise DomainError("cannot_follow_self", "you cannot follow yourself", field="handle")
    if rel.blocked_either_way:
        raise Forbidden("blocked", "you cannot follow this member", field="handle")
