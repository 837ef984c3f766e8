"""Words for officers, in zh-CN (the district's default) and en.

One renderer (:class:`Wording`) over gettext catalogs turns the core's facts
into text for every output: robot messages, the status table, the API's
reasons and the console.
"""

from commsmon.outputs.wording.catalogs import Language
from commsmon.outputs.wording.render import DEFAULT_TZ, Wording

__all__ = ["DEFAULT_TZ", "Language", "Wording"]
