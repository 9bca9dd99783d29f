"""Subject lines: the reply and forward prefixes mail clients add, in many languages.

Clients prefix a reply's subject with their own word for "Re:" (RFC 5322 §3.6.5 only suggests
"Re: ") and a forward's with theirs for "Fwd:": Outlook writes `AW:` (de), `SV:` (sv, da, no),
`Antw:` (nl), `Odp:` (pl), `YNT:` (tr), `ΑΠ:` (el), `RES:`/`ENC:` (pt-BR), `R:`/`I:` (it),
`回复:`/`转发:` (zh), `返信:`/`転送:` (ja), `회신:`/`전달:` (ko); autoresponders add `Automatic reply:` and the like. Some come with a counter (`Re[2]:`,
`RE [3]:`) or a full-width colon (`Re：`). `strip_prefixes` removes every such prefix, repeatedly,
so our `Re: ` + subject never grows from round to round.
"""

from __future__ import annotations

import re

# reply prefixes, by the languages handoff's notices speak and the clients' common others
REPLY_WORDS = (
    "re", "aw", "sv", "vs", "antw", "antwort", "odp", "ynt", "απ", "σχετ", "rif", "r", "res", "resp",
    "réf", "ref", "bls", "balas", "vá", "atb", "svar", "odg", "отв", "回复", "答复", "回覆", "返信",
    "회신", "답장", "답신",
)
FORWARD_WORDS = (
    "fw", "fwd", "wg", "tr", "rv", "i", "enc", "pd", "doorst", "trs", "προώθ", "πρθ", "İlt", "ilt", "vl",
    "továbbítás", "转发", "轉寄", "転送", "전달",
)
# what autoresponders put before the subject they answer ("Automatic reply: Re: ...")
AUTO_WORDS = (
    "automatic reply", "automated response", "auto", "autoreply", "auto-reply", "out of office",
    "automatische antwort", "réponse automatique", "respuesta automática", "resposta automática",
    "risposta automatica", "automatisch antwoord", "自動応答", "自动回复", "자동 회신",
)

_WORD = "|".join(sorted({re.escape(w) for w in REPLY_WORDS + FORWARD_WORDS + AUTO_WORDS}, key=len, reverse=True))
_PREFIX = re.compile(rf"^\s*(?:{_WORD})\s*(?:[\[(]\d+[\])])?\s*[:：]\s*", re.IGNORECASE)
_FORWARD = re.compile(
    rf"^\s*(?:{'|'.join(re.escape(w) for w in sorted(FORWARD_WORDS, key=len, reverse=True))})"
    r"\s*(?:[\[(]\d+[\])])?\s*[:：]", re.IGNORECASE)


def strip_prefixes(subject: str) -> str:
    """The subject without any leading reply/forward prefixes ("AW: RE[2]: Fwd： x" -> "x")."""
    previous = None
    subject = subject.strip()
    while previous != subject:
        previous = subject
        subject = _PREFIX.sub("", subject, count=1).strip()
    return subject


def is_forward(subject: str) -> bool:
    """True when the subject's first prefix is a forward's ("Fwd:", "WG:", "TR:", "転送:" ...)."""
    return bool(_FORWARD.match(subject))


def reply_subject(subject: str) -> str:
    """ "Re: " + the subject without its prefixes; "Re: your message" for an empty one."""
    base = strip_prefixes(subject)
    return f"Re: {base}" if base else "Re: your message"
