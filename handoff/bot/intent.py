"""Does the customer ask for a person? Phrase patterns in the ten supported languages.

Text is folded before matching: accents stripped, case folded, punctuation turned into spaces
("¿Puedo hablar con una persona?" -> "puedo hablar con una persona"). The patterns are written
in that folded form and look for a request (talk to / connect me with / I want + a person
word, or a bare "agent"/"human" message), not for the words alone: "is a person allowed to
return two items?" and "你们是人工智能吗" are ordinary questions.
"""

from __future__ import annotations

import re
import unicodedata

# Person words per language, already folded.
_EN = (r"(?:human|human being|person|real person|live person|agent|live agent|representative|rep"
       r"|operator|someone|somebody|staff|staff member|employee|manager|supervisor|people"
       r"|customer service|customer support|support agent|support team)")
_ES = (r"(?:persona|persona real|humano|ser humano|agente|asesor|asesora|operador|operadora"
       r"|representante|ejecutivo|ejecutiva|encargado|encargada|empleado|empleada|alguien)")
_FR = (r"(?:conseiller|conseillere|agent|humain|etre humain|personne|vraie personne|vrai humain"
       r"|operateur|operatrice|quelqu un|interlocuteur|interlocutrice|responsable|service client)")
_DE = (r"(?:mitarbeiter|mitarbeiterin|menschen|mensch|person|berater|beraterin|kundenberater"
       r"|kundenberaterin|agenten|kundendienst|kundenservice|jemandem|support)")
_PT = (r"(?:atendente|pessoa|pessoa real|humano|ser humano|agente|representante|operador"
       r"|operadora|consultor|consultora|alguem|funcionario|funcionaria)")
_IT = (r"(?:operatore|operatrice|persona|persona reale|persona vera|umano|essere umano|agente"
       r"|consulente|addetto|addetta|qualcuno)")
_NL = r"(?:medewerker|medewerkster|mens|persoon|agent|iemand|klantenservice)"
_ID = (r"(?:manusia|orang|orang asli|agen|cs|petugas|operator|admin|customer service|staf"
       r"|karyawan)")

_PATTERNS: dict[str, tuple[str, ...]] = {
    "en": (
        rf"\b(?:talk|speak|chat)\s+(?:to|with)\s+(?:(?:a|an|the|some|your|one of your)\s+)?"
        rf"(?:(?:real|live|actual)\s+)?{_EN}\b",
        rf"\b(?:connect|transfer|put)\s+me\s+(?:to|with|through to)\s+(?:(?:a|an|the|your)\s+)?"
        rf"(?:(?:real|live)\s+)?{_EN}\b",
        r"\b(?:i want|i need|get me|give me|can i get|can i have|i d like|i would like|let me talk to)"
        r"\s+(?:(?:a|an|to)\s+)?(?:(?:real|live)\s+)?"
        r"(?:human|person|agent|representative|operator|real person)\b(?!\s*s\b)",
        r"\b(?:real|live|actual)\s+(?:human|person|agent|people)\b",
        r"^(?:(?:a|an)\s+)?(?:human|agent|representative|operator|person|live agent)"
        r"(?:\s+(?:please|pls|plz|now))*$",
    ),
    "es": (
        rf"\bhablar\s+con\s+(?:(?:un|una|el|la|algun|alguna)\s+)?{_ES}\b",
        rf"\b(?:quiero|necesito|pasame|paseme|comunicame|comuniqueme|ponme|pongame)\s+"
        rf"(?:con\s+)?(?:un|una)\s+{_ES}\b",
        r"\b(?:atencion|agente|persona)\s+(?:humana|humano|real)\b",
        r"^(?:(?:un|una)\s+)?(?:agente|asesor|humano|operador)(?:\s+(?:por favor|porfa|xfa))*$",
    ),
    "fr": (
        rf"\bparler\s+(?:a|avec)\s+(?:(?:un|une|le|la|l|votre|vos)\s+)?(?:(?:vrai|vraie)\s+)?{_FR}\b",
        rf"\b(?:mettez|mets|passez|passe|transferez)\s+moi\s+(?:en relation\s+)?(?:avec|a)\s+"
        rf"(?:(?:un|une|le|la|l)\s+)?{_FR}\b",
        r"\b(?:je veux|je voudrais|j aimerais|je souhaite)\s+(?:un|une)\s+"
        r"(?:conseiller|conseillere|agent|humain|operateur|operatrice|vraie personne|vrai humain)\b",
        r"\b(?:vrai|vraie)\s+(?:humain|personne|conseiller)\b",
        r"^(?:(?:un|une)\s+)?(?:conseiller|humain|operateur)(?:\s+(?:svp|stp|s il vous plait))*$",
    ),
    "de": (
        rf"\bmit\s+(?:(?:einem|einer|dem|der|ihrem|ihrer)\s+)?(?:(?:echten|richtigen)\s+)?{_DE}"
        r"\s+(?:\w+\s+)?(?:sprechen|reden|chatten|schreiben|verbinden|telefonieren)\b",
        r"\bverbinden?\s+(?:sie\s+)?mich\s+(?:bitte\s+)?mit\b",
        r"\b(?:echte[nr]?|richtige[nr]?)\s+(?:mensch|menschen|mitarbeiter|person)\b",
        r"\b(?:ich will|ich mochte|ich brauche|ich hatte gern|ich hatte gerne)\s+(?:einen|eine)\s+"
        r"(?:mitarbeiter|mitarbeiterin|menschen|berater|beraterin|kundenberater|agenten)\b",
        r"^(?:mitarbeiter|mensch|berater)(?:\s+bitte)*$",
    ),
    "pt": (
        rf"\bfalar\s+com\s+(?:(?:um|uma|o|a|algum|alguma)\s+)?{_PT}\b",
        r"\b(?:quero|preciso de|gostaria de)\s+(?:um|uma)\s+(?:atendente|humano|agente|pessoa real)\b",
        r"\batendimento\s+humano\b",
        r"\b(?:pessoa|humano)\s+(?:de verdade|real)\b",
        r"^(?:(?:um|uma)\s+)?(?:atendente|humano)(?:\s+(?:por favor|pfv|pf))*$",
    ),
    "it": (
        rf"\bparlare\s+con\s+(?:(?:un|una|l|il|la|un vero|una vera)\s+)?{_IT}\b",
        r"\b(?:voglio|vorrei)\s+(?:un|una)\s+(?:operatore|operatrice|umano|persona reale|persona vera)\b",
        r"\b(?:operatore|persona)\s+(?:umano|umana|reale|vera|vero)\b",
        r"^(?:(?:un|una)\s+)?(?:operatore|operatrice)(?:\s+per favore)*$",
    ),
    "nl": (
        rf"\b(?:spreken|praten|chatten)\s+met\s+(?:(?:een|de)\s+)?(?:echte\s+)?{_NL}\b",
        rf"\b(?:een|iemand|de)\s+(?:echte\s+)?(?:{_NL}\s+)?(?:spreken|praten|chatten)\b",
        r"\bverbind\s+(?:me|mij)\s+(?:door\s+)?met\b",
        r"\b(?:echte|echt)\s+(?:mens|persoon|medewerker)\b",
        r"^(?:medewerker|mens)(?:\s+(?:alstublieft|aub|graag))*$",
    ),
    "id": (
        rf"\b(?:bicara|berbicara|ngobrol|chat|ngomong)\s+(?:langsung\s+)?(?:dengan|sama|ke)\s+"
        rf"(?:seorang\s+)?{_ID}\b",
        rf"\b(?:hubungkan|sambungkan)\s+(?:saya\s+)?(?:dengan|ke)\s+{_ID}\b",
        r"\b(?:mau|minta|ingin|butuh|pengen)\s+(?:(?:dengan|ke|sama)\s+)?"
        r"(?:agen|petugas|cs|operator|admin|manusia|orang asli|customer service)\b",
        r"\b(?:manusia|orang)\s+(?:asli|sungguhan|beneran)\b",
    ),
    "ja": (
        r"(?:担当者|担当の方|オペレーター|オペレータ|人間|有人|スタッフ|係の人|係の方|(?<![一-龯])人)"
        r"(?:と|に)(?:話|はな|つな|繋|代わ|かわ|替わ|変わ)",
        r"(?:担当者|オペレーター|オペレータ|人間|有人対応)(?:を|に|で)?(?:お願い|希望|呼んで|出して)",
        r"有人対応",
    ),
    "zh": (
        r"人工客服|人工服务|人工服務|人工坐席|真人客服|真人服务|真人服務",
        r"(?:转|轉|找|要|接|换|換)人工",
        r"(?:和|跟|与|與|找|联系|聯繫)(?:真人|人工|客服人员|客服人員|工作人员|工作人員|客服)",
        r"^人工$",
    ),
}


def fold(text: str) -> str:
    """Lower-case, accent-free text with punctuation as single spaces (for matching)."""
    decomposed = unicodedata.normalize("NFKD", text)
    stripped = "".join(ch for ch in decomposed if not unicodedata.combining(ch)).casefold()
    return " ".join(re.sub(r"[^\w]+", " ", stripped).split())


def _fold_pattern(pattern: str) -> str:
    # Japanese voiced kana lose their mark in fold(); patterns must lose it the same way.
    decomposed = unicodedata.normalize("NFKD", pattern)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


_COMPILED = re.compile("|".join(f"(?:{_fold_pattern(p)})" for ps in _PATTERNS.values() for p in ps))


def wants_human(text: str) -> bool:
    """True when the customer explicitly asks to talk to a person, in any supported language."""
    return bool(_COMPILED.search(fold(text)))
