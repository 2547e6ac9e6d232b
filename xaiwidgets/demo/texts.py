"""Sample review sentences for the demo sentiment classifier (written for this package)."""

SAMPLE_TEXTS: tuple[str, ...] = (
    "A gorgeous, moving film with a terrific cast.",
    "Dull, lifeless and far too long.",
    "The plot is predictable but the acting is superb.",
    "An utterly charming and funny comedy.",
    "A mess of a movie that wastes its talented stars.",
    "Smart, tender and beautifully shot.",
    "I was bored from the first scene to the last.",
    "One of the best thrillers of the year.",
    "The jokes fall flat and the story goes nowhere.",
    "A warm, witty and wonderfully acted drama.",
    "Clumsy direction sinks an interesting premise.",
    "A delightful surprise from start to finish.",
    "Painfully slow and strangely joyless.",
    "The film is a triumph of style and heart.",
    "Tedious, shallow and instantly forgettable.",
    "A bold and brilliant piece of filmmaking.",
    "The dialogue is awkward and the pacing is awful.",
    "An entertaining ride with great performances.",
    "Nothing here works, least of all the script.",
    "A touching story told with real grace.",
)
