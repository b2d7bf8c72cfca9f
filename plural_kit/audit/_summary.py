"""A :class:`~plural_kit.results.Summary` of several tables under one title (audit reports)."""
from __future__ import annotations

import html
from collections.abc import Sequence

import pandas as pd

from plural_kit.results import Summary


def sections_summary(title: str, sections: Sequence[tuple[str, pd.DataFrame]], notes: Sequence[str] = (),
                     float_digits: int = 3) -> Summary:
    """``title``, then each ``(heading, frame)`` (rounded), then ``notes``: text and HTML."""
    text, body = [title], [f"<b>{html.escape(title)}</b>"]
    for heading, frame in sections:
        shown = frame.round(float_digits)
        text += ["", heading, shown.to_string()]
        body += [f"<p>{html.escape(heading)}</p>", shown.to_html(border=0, na_rep="")]
    text += [""] * bool(notes) + list(notes)
    body += [f"<p>{html.escape(n)}</p>" for n in notes]
    return Summary("\n".join(text), f"<div>{''.join(body)}</div>")
