"""Hand-off and cancel keywords in English, Spanish, French, German, Portuguese and Italian (bench_support
hb-ha02: "Ich möchte bitte mit einem Mitarbeiter sprechen." was not heard), with accents or without, and
sentences that mention people or stopping without asking for either."""

from __future__ import annotations

import pytest

from clearlm.apps.support.extract import intent_of

HANDOFF = {
    "en": ["Can I talk to a human?", "I want a real person", "speak to someone please", "HUMAN!"],
    "es": [
        "Quiero hablar con una persona",
        "¿Puedo hablar con un agente?",
        "necesito un humano",
        "pásame con un asesor",
    ],
    "fr": [
        "Je veux parler à un humain",
        "un humain svp",
        "Puis-je parler avec quelqu'un ?",
        "un conseiller, s'il vous plaît",
    ],
    "de": [
        "Ich möchte bitte mit einem Mitarbeiter sprechen.",
        "Ich will einen Menschen",
        "Bitte einen echten Menschen!",
        "Kann ich mit jemandem sprechen?",
    ],
    "pt": [
        "Quero falar com um atendente",
        "posso falar com uma pessoa?",
        "atendimento humano, por favor",
        "Quero um humano",
    ],
    "it": [
        "Vorrei parlare con un operatore",
        "posso parlare con una persona?",
        "passami un operatore",
        "voglio un essere umano",
    ],
}
CANCEL = {
    "en": ["cancel", "Never mind", "forget it, thanks", "stop"],
    "es": ["Cancelar", "olvídalo", "déjalo", "basta"],
    "fr": ["Annuler", "laisse tomber", "oubliez ça", "Arrêtez"],
    "de": ["Abbrechen", "vergiss es", "lass es", "egal"],
    "pt": ["Cancelar", "esquece", "deixa pra lá", "chega"],
    "it": ["Annulla", "lascia perdere", "lascia stare", "basta!"],
}
NEITHER = [
    "the human resources form",
    "Was it human error?",
    "It is a gift for my mother",
    "The parcel was left with a neighbour",
    "para mi hermana, talla M",  # "para" starts a sentence: no cancel
    "El empleado de correos lo dejó en la puerta",
    "Der Artikel ist kaputt",
    "Ich habe den Artikel gestern bekommen",
    "basta che arrivi entro venerdì",  # "basta" inside a sentence
    "Il colis est arrivé cassé",
    "A encomenda chegou aberta",
    "damaged",
    "A-10002",
]


@pytest.mark.parametrize(("language", "text"), [(lang, t) for lang, ts in HANDOFF.items() for t in ts])
def test_asking_for_a_person_is_heard_in_each_language(language, text):
    assert intent_of(text) == "handoff", (language, text)


@pytest.mark.parametrize(("language", "text"), [(lang, t) for lang, ts in CANCEL.items() for t in ts])
def test_stopping_is_heard_in_each_language(language, text):
    assert intent_of(text) == "cancel", (language, text)


@pytest.mark.parametrize("text", NEITHER)
def test_mentioning_people_or_a_stop_word_in_passing_is_neither(text):
    assert intent_of(text) is None


def test_accents_are_optional():
    assert intent_of("parler a un operateur") == intent_of("parler à un opérateur") == "handoff"
    assert intent_of("olvidalo") == intent_of("olvídalo") == "cancel"
