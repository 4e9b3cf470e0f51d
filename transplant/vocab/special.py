"""Special tokens are matched by role (bos, eos, pad, ...) and by text, never as ordinary bytes."""

from __future__ import annotations

from tokenizers import AddedToken

from .vocabulary import ROLES, Vocabulary


def match_special_tokens(source: Vocabulary, target: Vocabulary) -> dict[int, int]:
    """Target special id -> source special id: same content first, else the same role."""
    by_content = {content: index for index, content in source.special.items()}
    matched = {}
    for index, content in target.special.items():
        if content in by_content:
            matched[index] = by_content[content]
            continue
        for role in ROLES:
            if target.roles.get(role) == index and role in source.roles:
                matched[index] = source.roles[role]
                break
    return matched


def required_special_tokens(source: Vocabulary) -> set[int]:
    """Source specials the converted model cannot work without: bos/eos, chat-template markers
    and the specials its config names (image tokens)."""
    required = set(source.template_markers) | set(source.config_markers)
    required.update(source.roles[role] for role in ("bos", "eos") if role in source.roles)
    return required


def missing_special_tokens(source: Vocabulary, target: Vocabulary) -> list[int]:
    """Required source specials that no target token stands for.

    A chat-template or config marker must exist in the target with the same text (it is named);
    a bos/eos token may also be stood for by the target token that has the same role.
    """
    target_contents = set(target.special.values()) | {s for s in target.strings if s is not None}
    missing = []
    for index in sorted(required_special_tokens(source)):
        content = source.special[index]
        if content in target_contents:
            continue
        role = source.role_of(index)
        named = index in source.template_markers or index in source.config_markers
        if not named and role is not None and role in target.roles:
            continue
        missing.append(index)
    return missing


def add_missing_special_tokens(source: Vocabulary, target_tokenizer) -> list[str]:
    """Add the source's required special tokens the target lacks; give them the source's roles.

    Returns the added contents. The new rows are initialised from the source tokens they copy.
    """
    target = Vocabulary.from_tokenizer(target_tokenizer)
    contents = [source.special[i] for i in missing_special_tokens(source, target)]
    if contents:
        target_tokenizer.add_tokens([AddedToken(c, special=True, normalized=False) for c in contents], special_tokens=True)
    for role, index in source.roles.items():
        if role not in target.roles and source.special[index] in contents:
            setattr(target_tokenizer, f"{role}_token", source.special[index])
    return contents
