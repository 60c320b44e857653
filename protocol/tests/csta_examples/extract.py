"""Extracts every XML example of ../shared/docs/{rcc-sip,pbx-csta}.md into one file per document.

Run from this folder: python3 extract.py. Elisions the docs use for brevity are made concrete
(see README.md); everything else is copied byte for byte.
"""
import pathlib, re

DOCS = pathlib.Path(__file__).resolve().parents[4] / "shared" / "docs"
ED3 = "http://www.ecma-international.org/standards/ecma-323/csta/ed3"
TAG = re.compile(r"<!--.*?-->|<\?.*?\?>|<[^>]+>", re.S)

def documents(block):
    depth, start = 0, None
    for m in TAG.finditer(block):
        t = m.group(0)
        if t.startswith("<!--") or t.startswith("<?"):
            if depth == 0 and t.startswith("<?xml") and start is None:
                start = m.start()
            continue
        if t.startswith("</"):
            depth -= 1
            if depth == 0:
                yield block[start:m.end()]
                start = None
        elif t.endswith("/>"):
            if depth == 0:
                yield block[start if start is not None else m.start():m.end()]
                start = None
        else:
            if depth == 0 and start is None:
                start = m.start()
            depth += 1

def concrete(doc):
    doc = doc.replace('xmlns="…/ed3"', f'xmlns="{ED3}"').replace('xmlns="…"', f'xmlns="{ED3}"')
    doc = doc.replace("<deviceID …>", '<deviceID typeOfNumber="other" mediaClass="notKnown">')
    return doc

for name in ["rcc-sip.md", "pbx-csta.md"]:
    text = (DOCS / name).read_text()
    n = 0
    for block in re.findall(r"```xml\n(.*?)```", text, re.S):
        for doc in documents(block):
            root = re.search(r"<([A-Za-z0-9_:]+)", TAG.sub(lambda m: m.group(0) if not m.group(0).startswith(("<?", "<!--")) else "", doc)).group(1)
            n += 1
            out = pathlib.Path(f"{name[:-3]}-{n:02d}-{root.split(':')[-1]}.xml")
            out.write_text(concrete(doc) + "\n")
    print(name, n)
