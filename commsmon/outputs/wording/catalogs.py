"""The zh-CN and en message catalogs (gettext ``.po`` files, read with Babel).

Message ids are the English texts with ``{named}`` placeholders, marked in the
code with :func:`N_` so that Babel's extractor finds them (``pybabel extract
-k N_``); ``locale/zh_CN/LC_MESSAGES/commsmon.po`` translates them, and
``locale/en/...`` may reword them.  The ``.po`` files are compiled in memory
on first use, so there is no build step and no stale ``.mo`` to ship.
"""

from __future__ import annotations

import gettext
import io
from functools import cache
from pathlib import Path
from typing import Literal

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

__all__ = ["DOMAIN", "LOCALES", "LOCALE_DIR", "N_", "Language", "po_path", "translations"]

Language = Literal["zh", "en"]

DOMAIN = "commsmon"
LOCALE_DIR = Path(__file__).parent / "locale"
#: The gettext locale of each language the product speaks.
LOCALES: dict[Language, str] = {"zh": "zh_CN", "en": "en"}


def N_(message: str) -> str:
    """Mark ``message`` for the catalogs; it is translated where it is rendered."""
    return message


def po_path(language: Language) -> Path:
    """The catalog file of ``language``."""
    return LOCALE_DIR / LOCALES[language] / "LC_MESSAGES" / f"{DOMAIN}.po"


@cache
def translations(language: Language) -> gettext.NullTranslations:
    """The compiled catalog of ``language`` (an entry left empty falls back to the id).

    Raises:
        OSError: the catalog file cannot be read.
    """
    with po_path(language).open("rb") as f:
        catalog = read_po(f, locale=LOCALES[language], domain=DOMAIN)
    buffer = io.BytesIO()
    write_mo(buffer, catalog, use_fuzzy=False)
    buffer.seek(0)
    return gettext.GNUTranslations(buffer)
