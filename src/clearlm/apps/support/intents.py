"""What a customer asks for beyond the flow's question, by keywords, in the languages the desk hears:
a person (``handoff``) or to stop (``cancel``).

Phrases are regular expressions per language (ISO 639-1), matched on the text lower-cased and without
accents ("operateur" and "opérateur" alike), as whole words. A hand-off needs a person named as one
asks for them ("a human", "talk to someone", "hablar con una persona", "un humain", "einen Menschen",
"falar com um atendente", "parlare con un operatore"), not a word alone: "the human resources form"
asks for no one. A cancel is a message that starts with a stop word ("cancel", "cancelar", "annuler",
"abbrechen", "annulla"), or is nothing but a short one ("stop", "basta", "egal"), which inside a
sentence means something else ("basta che arrivi").

Keywords are a first layer, written by hand (bench_support hb-ha02: "Ich möchte bitte mit einem
Mitarbeiter sprechen." was not heard); a language missing here is not heard at all.
"""

from __future__ import annotations

import re
import unicodedata

HANDOFF_PHRASES: dict[str, str] = {
    "en": (
        r"(a|an|the|real|live|actual)\s+human(?!\s+(resources|error|rights))|human\s+(agent|being|please)"
        r"|real person|a person|someone real|an agent|a colleague|a manager|a supervisor"
        r"|(speak|talk|chat)\s+(to|with)\s+(someone|somebody|a\s+person|staff)|operator|representative"
    ),
    "es": (
        r"(hablar|hable|comunicarme|pasarme|pasame|ponerme|ponme|quiero|necesito|prefiero)\s+(con\s+|a\s+)?"
        r"(una?\s+|el\s+|la\s+|algun[oa]?\s+)?(persona|humano|ser humano|agente|operador|operadora|asesor"
        r"|asesora|representante|empleado|empleada|alguien)"
        r"|persona real|agente humano|atencion humana|un humano|un ser humano"
    ),
    "fr": (
        r"(parler|discuter|echanger)\s+(a|avec)\s+(quelqu.?un|une?\s+(vraie?\s+)?(humain|personne"
        r"|conseiller|conseillere|agent|operateur|operatrice|responsable|interlocuteur))"
        r"|une?\s+(vraie?\s+)?(humain|conseiller|conseillere|operateur|operatrice|agent humain)"
        r"|un etre humain|une vraie personne|une personne reelle"
    ),
    "de": (
        r"(mit|einen|einem|einer)\s+(echten\s+|menschlichen\s+)?(menschen|mitarbeiter|mitarbeiterin"
        r"|berater|beraterin|kundenberater|kundenberaterin|sachbearbeiter|sachbearbeiterin)"
        r"|echte person|echten person|mit einer person|mit jemandem (sprechen|reden)|mit dem kundendienst"
    ),
    "pt": (
        r"(falar|conversar|fale|atendimento)\s+(com|por)\s+(um|uma|o|a|algum|alguma)?\s*(atendente|pessoa"
        r"|humano|agente|operador|operadora|representante|consultor|consultora|alguem)"
        r"|um atendente|uma atendente|pessoa real|um humano|um ser humano|atendimento humano"
        r"|atendente humano"
    ),
    "it": (
        r"(parlare|parlo|parli|passarmi|passami|voglio|vorrei)\s+(con\s+)?(un|una|un'|qualche)?\s*(operatore"
        r"|operatrice|persona|umano|essere umano|agente|addetto|addetta|consulente|qualcuno)"
        r"|un operatore|un'operatrice|una persona vera|una persona reale|un essere umano|operatore umano"
    ),
}
CANCEL_START: dict[str, str] = {
    "en": r"cancel|never ?mind|forget it|stop",
    "es": r"cancelar|cancela|cancelalo|anular|olvidalo|olvidelo|dejalo|deja(lo)? estar",
    "fr": r"annuler|annule|annulez|laisse tomber|laissez tomber|oublie|oubliez|arrete|arretez",
    "de": r"abbrechen|abbruch|vergiss es|vergessen sie es|lass es|lassen sie es|stopp",
    "pt": r"cancelar|cancela|cancele|esquece|esqueca|deixa pra la|deixa para la|parar|pare",
    "it": r"annulla|annullare|lascia perdere|lascia stare|lasci perdere|dimentica|fermati|ferma tutto",
}
CANCEL_ALONE = r"basta|egal|no importa|para|halt|ferma|chega|stop|ok stop"


def _plain(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text.lower())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def _union(phrases: dict[str, str]) -> str:
    return "|".join(f"(?:{p})" for p in phrases.values())


HANDOFF_ALONE = r"human|humano|humain|mensch|umano|agent|agente|operator|operador|operateur|operatore"
HANDOFF_WORDS = re.compile(r"\b(?:" + _union(HANDOFF_PHRASES) + r")\b|^\W*(?:" + HANDOFF_ALONE + r")\W*$")
CANCEL_WORDS = re.compile(r"^\W*(?:" + _union(CANCEL_START) + r")\b|^\W*(?:" + CANCEL_ALONE + r")\W*$")


def intent_of(text: str) -> str | None:
    """What the customer asks for beyond the flow's question, by keywords (see the module): ``handoff``
    (a person: "can I talk to a human?", "quiero hablar con una persona"), ``cancel`` (a message starting
    "cancel", "cancelar", "annuler", "abbrechen", ..., or only "stop", "basta"), or None."""
    said = _plain(text)
    if HANDOFF_WORDS.search(said):
        return "handoff"
    if CANCEL_WORDS.search(said):
        return "cancel"
    return None
