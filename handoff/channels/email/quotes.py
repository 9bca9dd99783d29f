"""Where quoted history and forwarded content start in a plain-text email body.

Mail clients put the message being answered below an attribution line ("On Mon, … wrote:",
Gmail) or a header block ("From: / Sent: / To: / Subject:", Outlook), each in the writer's
language; Japanese, Chinese and Korean Outlook write full-width colons (`差出人： / 送信日時： /
宛先： / 件名：`). This module knows these for every language handoff's notices speak (en, es,
fr, de, pt, it, nl, id, ja, zh) and Korean, and one rule that needs no language: a header block
or attribution that quotes one of our own addresses or Message-IDs starts quoted history.
mail-parser-reply (used after this, in `text`) covers signatures and more Western clients.

Forward markers (Gmail's "---------- Forwarded message ---------", Thunderbird's "-------- Forwarded
Message --------", Apple Mail's "Begin forwarded message:", in the same languages) start content
the sender chose to send us: the caller keeps it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

_FORWARD_TITLES = (
    "forwarded message", "original message follows", "mensaje reenviado", "message transféré",
    "message transfere", "weitergeleitete nachricht", "mensagem encaminhada", "mensagem reencaminhada",
    "messaggio inoltrato", "doorgestuurd bericht", "pesan yang diteruskan", "pesan terusan",
    "転送されたメッセージ", "转发的邮件", "已转发邮件", "轉寄的郵件", "전달된 메시지",
)
_FORWARD_LINE = re.compile(
    r"^\s*-{3,}\s*(?:" + "|".join(map(re.escape, _FORWARD_TITLES)) + r")\s*-{3,}\s*$"
    r"|^\s*(?:begin forwarded message|anfang der weitergeleiteten nachricht|début du message réexpédié"
    r"|inicio del mensaje reenviado|início da mensagem reencaminhada|início da mensagem encaminhada"
    r"|inizio messaggio inoltrato|begin doorgestuurd bericht|awal pesan yang diteruskan"
    r"|転送されたメッセージ|以下为转发的邮件|转发的邮件|전달된 메시지)\s*[:：]?\s*$",
    re.IGNORECASE,
)

# header-block labels: (who sent it) and (the other fields), by language
_FROM_LABELS = ("from", "von", "de", "da", "van", "dari", "差出人", "送信者", "发件人", "寄件者", "寄件人",
                "보낸 사람", "보낸사람", "från", "od", "fra")
_OTHER_LABELS = ("sent", "date", "to", "cc", "subject", "gesendet", "datum", "an", "betreff", "kopie",
                 "enviado", "enviada", "fecha", "para", "asunto", "envoyé", "à", "a", "objet", "inviato",
                 "oggetto", "verzonden", "aan", "onderwerp", "data", "assunto", "terkirim", "tanggal",
                 "kepada", "perihal", "subjek", "送信日時", "日付", "宛先", "件名", "发送时间", "日期",
                 "收件人", "主题", "抄送", "寄件日期", "收件者", "主旨", "副本", "보낸 날짜", "받는 사람",
                 "받는사람", "제목", "참조")
_LABEL = r"^[\s>*]*(?:{})[\s*]*[:：]"
_FROM_LINE = re.compile(_LABEL.format("|".join(map(re.escape, _FROM_LABELS))), re.IGNORECASE)
_FIELD_LINE = re.compile(_LABEL.format("|".join(map(re.escape, _FROM_LABELS + _OTHER_LABELS))), re.IGNORECASE)
# a separator line Outlook puts above its header block
_SEPARATOR = re.compile(
    r"^\s*(?:_{10,}|-{3,}\s*(?:original message|ursprüngliche nachricht|mensaje original|message d'origine"
    r"|messaggio originale|oorspronkelijk bericht|mensagem original|pesan asli|元のメッセージ|原始邮件"
    r"|원본 메시지)\s*-{3,})\s*$",
    re.IGNORECASE,
)
# attribution lines ending in a colon ("On … wrote:", "El … escribió:", "2025年3月7日(金) … <a@b>:")
_ATTRIBUTION = re.compile(
    r"(?:wrote|escribió|a écrit|schrieb|escreveu|ha scritto|scrisse|schreef|menulis|のメッセージ|写道|寫道"
    r"|작성|님이 씀|\S+@\S+>?)\s*[:：]\s*$",
    re.IGNORECASE,
)
_OPENER = re.compile(r"^(?:(?:on|el|le|am|em|il|op|pada)\s|在|\d{4}\s*[年년/.-])", re.IGNORECASE)
_QUOTED = re.compile(r"^\s*>")


def forward_marker(lines: Sequence[str]) -> int | None:
    """The index of the first forward marker line, or None."""
    for index, line in enumerate(lines):
        if _FORWARD_LINE.match(line):
            return index
    return None


def history_start(lines: Sequence[str], own: Iterable[str] = ()) -> int | None:
    """The index of the first line of quoted history (its separator or attribution), or None."""
    needles = [n.lower().strip("<>") for n in own if n and n.strip("<>")]
    for index, line in enumerate(lines):
        if _FROM_LINE.match(line) and _block_follows(lines, index):
            return _with_separator(lines, index)
        if _is_attribution(lines, index):
            return index
        lowered = line.lower()
        if needles and any(n in lowered for n in needles) and _quotes_ours(lines, index):
            return _with_separator(lines, index)
    return None


def _block_follows(lines: Sequence[str], index: int) -> bool:
    """True when at least one more header field follows the From line within three lines."""
    following = [line for line in lines[index + 1:index + 4] if line.strip()]
    return bool(following) and bool(_FIELD_LINE.match(following[0]))


def _is_attribution(lines: Sequence[str], index: int) -> bool:
    """An attribution line (possibly wrapped onto the next line) that carries a date or an address
    and ends in a colon; the customer's own "My colleague wrote:" has neither."""
    line = lines[index].strip()
    if not line or _QUOTED.match(line):
        return False
    candidates = [line]
    following = lines[index + 1].strip() if index + 1 < len(lines) else ""
    # Gmail wraps a long attribution: join the next line when it only continues this one
    if following and (_OPENER.match(line) or not _attribution_alone(following)):
        candidates.append(line + " " + following)
    return any(_attribution_alone(text) for text in candidates)


def _attribution_alone(text: str) -> bool:
    return bool(_ATTRIBUTION.search(text)) and (bool(re.search(r"\d", text)) or "@" in text) and len(text) < 300


def _quotes_ours(lines: Sequence[str], index: int) -> bool:
    """True when the line naming our address or Message-ID is a header field, an attribution
    (ends in a colon, maybe one line on) or stands right above quoted lines."""
    line = lines[index].strip()
    if _FIELD_LINE.match(line) or re.match(r"^[^\s:：]{1,30}\s*[:：]", line):
        return True
    if line.endswith((":", "：")) or (index + 1 < len(lines) and lines[index + 1].strip().endswith((":", "："))):
        return True
    following = [other for other in lines[index + 1:index + 3] if other.strip()]
    return bool(following) and bool(_QUOTED.match(following[0]))


def _with_separator(lines: Sequence[str], index: int) -> int:
    """`index`, or the separator line (and blank lines) just above it."""
    above = index - 1
    while above >= 0 and not lines[above].strip():
        above -= 1
    return above if above >= 0 and _SEPARATOR.match(lines[above]) else index
