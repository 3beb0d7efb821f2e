"""How far our feed parser agrees with Python's feedparser, the most widely
used lenient feed parser, over a corpus of real-world quirks.

tests/api/feed_corpus.rs writes what our parser made of each document to a
JSON file and runs this script on it; this script parses the same documents
with feedparser and compares, per document, the feed title and the set of
(item title, item link) pairs, after the same normalization on both sides:

- titles: whitespace collapsed; feedparser's HTML titles (its
  `title_detail.type` is text/html or XHTML) have their markup dropped and entities
  decoded, as ours are plain text; its plain-text titles are compared as
  they are, so `History of the <blink> tag` must stay whole; where
  feedparser finds no title, any title of ours agrees (we show a feed
  without one under its host name, and an item without one under an
  excerpt of its text);
- links: only http(s) links count (we drop any other scheme on purpose);
- items with neither a title nor a link are left out on both sides.

feedparser does not read JSON Feed; for .json documents the reference is
the document's own fields, as the JSON Feed specification defines them
(`title`, and each item's `title` and `url`, else `external_url`).

Two differences are deliberate and show up as disagreements:

- rss-empty-link-guid: an item whose <link> is empty but whose <guid> is a
  permalink gets the guid as its link from us (the RSS 2.0 meaning of
  isPermaLink); feedparser leaves it without one.
- rss-two-channel-links: a channel with two <link>s keeps the first with
  us and the last with feedparser; the first is the one the author wrote
  where the specification expects it.

Usage: feed_agreement.py <corpus folder> <base URL> <ours.json>
Prints a line per disagreement, then `agreement: <agreed>/<total>`.
"""

import html
import json
import os
import re
import sys

import feedparser


def norm_title(title, is_html=False):
    if title is None:
        return None
    text = title
    if is_html:
        text = html.unescape(re.sub(r"<[^>]*>", "", text))
    text = " ".join(text.split())
    return text or None


def title_of(entry):
    """feedparser's title, with its markup dropped if it is HTML."""
    detail = entry.get("title_detail") or {}
    markup = detail.get("type") in ("text/html", "application/xhtml+xml")
    return norm_title(entry.get("title"), markup)


def norm_link(link):
    if link and (link.startswith("http://") or link.startswith("https://")):
        return link
    return None


def reference(path, base):
    with open(path, "rb") as f:
        data = f.read()
    if path.endswith(".json"):
        doc = json.loads(data)
        items = [
            (item.get("title"), item.get("url") or item.get("external_url"))
            for item in doc.get("items", [])
        ]
        return norm_title(doc.get("title")), items
    parsed = feedparser.parse(data, response_headers={"content-location": base})
    items = [(title_of(e), e.get("link")) for e in parsed.entries]
    return title_of(parsed.feed), items


def pairs(items):
    out = set()
    for title, link in items:
        title, link = norm_title(title), norm_link(link)
        if title is None and link is None:
            continue
        out.add((title, link))
    return out


def agrees(ours, theirs):
    """Whether our (title, pairs) match theirs, under the placeholder rule."""
    our_title, our_pairs = ours
    their_title, their_pairs = theirs
    if their_title is not None and our_title != their_title:
        return False
    if len(our_pairs) != len(their_pairs):
        return False
    # Match pairs; an untitled reference item matches ours by link alone.
    remaining = set(our_pairs)
    for title, link in sorted(their_pairs, key=lambda p: (p[0] is None, str(p))):
        if title is None:
            match = next((p for p in sorted(remaining, key=str) if p[1] == link), None)
        else:
            match = (title, link) if (title, link) in remaining else None
        if match is None:
            return False
        remaining.discard(match)
    return True


def main(folder, base, ours_path):
    with open(ours_path) as f:
        ours = json.load(f)
    agreed = 0
    names = sorted(os.listdir(folder))
    for name in names:
        their_title, their_items = reference(os.path.join(folder, name), base)
        theirs = (their_title, pairs(their_items))
        mine = ours.get(name) or {}
        mine = (norm_title(mine.get("title")), pairs(mine.get("items", [])))
        if agrees(mine, theirs):
            agreed += 1
        else:
            print(f"{name}: ours {mine} / reference {theirs}")
    print(f"agreement: {agreed}/{len(names)}")


if __name__ == "__main__":
    main(*sys.argv[1:4])
