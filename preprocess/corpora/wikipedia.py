"""Wikipedia -> RAW_DIR/{train,valid,test}.{lang}, as XLM's get-data-wiki.sh (WikiExtractor, drop empty and
`<doc>` lines, hold out 5000 + 5000 lines for valid and test).

    # with internet: download the dump (wget/curl) and extract it
    python -m xlm_preprocess.corpora.wikipedia --lang fr --download --dump-dir dumps --output raw
    # a dump you have: *.xml.bz2, *.xml.gz or *.xml
    python -m xlm_preprocess.corpora.wikipedia --lang fr --dump frwiki-latest-pages-articles.xml.bz2 --output raw
    # text extracted by WikiExtractor (`pip install wikiextractor`;
    #   python -m wikiextractor.WikiExtractor DUMP -o extracted), a folder of wiki_* files or one file
    python -m xlm_preprocess.corpora.wikipedia --lang fr --extracted extracted --output raw

The built-in extractor is a small one: it streams the dump's main-namespace articles (no redirects), removes
comments, references, templates, tables, files and categories, keeps link labels, drops headings and list/table
markup, and writes WikiExtractor's format (`<doc id url title>`, title, paragraphs, `</doc>`) to
`--extracted-output` if asked. WikiExtractor is more thorough (it expands some templates); use it for
full-scale corpora."""

import bz2
import gzip
import html
import os
import re
import sys
import xml.etree.ElementTree as ET
from typing import Iterator, Tuple

from ..common import LineReader, PreprocessError, atomic_output, check_lang, log, temp_name
from . import add_split_arguments, download, remove_quietly, split_aligned

DUMP_URL = "https://dumps.wikimedia.org/{lang}wiki/latest/{lang}wiki-latest-pages-articles.xml.bz2"

# namespaces whose links are files or categories (English and the XLM-15 languages' most common names)
_DROP_NAMESPACES = {
    "file",
    "image",
    "media",
    "category",
    "fichier",
    "catégorie",
    "datei",
    "bild",
    "kategorie",
    "archivo",
    "imagen",
    "categoría",
    "ficheiro",
    "categoria",
    "immagine",
    "файл",
    "категория",
    "изображение",
    "ملف",
    "تصنيف",
    "dosya",
    "kategori",
    "tập tin",
    "thể loại",
    "文件",
    "分类",
    "檔案",
    "分類",
    "ファイル",
    "画像",
    "カテゴリ",
    "ไฟล์",
    "หมวดหมู่",
    "αρχείο",
    "κατηγορία",
    "चित्र",
    "श्रेणी",
    "faili",
    "jamii",
    "زمرہ",
    "فائل",
}
_COMMENT = re.compile(r"<!--.*?-->", re.S)
_REF = re.compile(r"<ref[^>]*/>|<ref[^>]*>.*?</ref>", re.S | re.I)
_DROP_BLOCKS = re.compile(
    r"<(math|gallery|timeline|syntaxhighlight|source|score|graph|imagemap|chem|ce|hiero|mapframe)\b[^>]*>.*?</\1>",
    re.S | re.I,
)
_TAG = re.compile(r"</?[a-zA-Z][^>]*?/?>")
_TEMPLATE = re.compile(r"\{\{[^{}]*\}\}")
_TABLE = re.compile(r"\{\|(?:(?!\{\|)(?!\|\}).)*\|\}", re.S)
_LINK = re.compile(r"\[\[([^\[\]]*)\]\]")
_EXTERNAL = re.compile(r"\[(?:https?:|ftp:)?//[^\s\]]+\s*([^\]]*)\]")
_EMPHASIS = re.compile(r"'{2,5}")
_MAGIC = re.compile(r"__[A-Z]+__")
_HEADING = re.compile(r"^=+.*=+$")
_LIST = re.compile(r"^[*#:;]+\s*")


def _repeat(pattern, repl, text: str, limit: int = 30) -> str:
    """Apply an innermost-first substitution until nothing changes (nested templates, tables, links)."""
    for _ in range(limit):
        new = pattern.sub(repl, text)
        if new == text:
            return new
        text = new
    return text


def _link(match) -> str:
    inner = match.group(1)
    target, _, label = inner.partition("|")
    if ":" in target and not target.startswith(":"):
        prefix = target.split(":", 1)[0].strip().lower()
        if prefix in _DROP_NAMESPACES or re.fullmatch(r"[a-z]{2,3}(-[a-z]+)?", prefix):
            return ""  # a file, a category or an interlanguage link
    if label:
        return label.rsplit("|", 1)[-1]
    return target.lstrip(":")


def clean_wikitext(text: str) -> Iterator[str]:
    """The paragraphs (one per line, whitespace collapsed) of an article's wiki markup."""
    text = _COMMENT.sub("", text)
    text = _REF.sub("", text)
    text = _DROP_BLOCKS.sub("", text)
    text = _repeat(_TEMPLATE, "", text)
    text = _repeat(_TABLE, "", text)
    text = _repeat(_LINK, _link, text)
    text = _EXTERNAL.sub(lambda m: m.group(1), text)
    text = _TAG.sub("", text)
    text = _EMPHASIS.sub("", text)
    text = _MAGIC.sub("", text)
    text = html.unescape(html.unescape(text))
    for line in text.split("\n"):
        line = line.strip()
        if not line or _HEADING.match(line) or line[0] in "|!{}" or line.startswith(("[[", "]]")):
            continue
        line = " ".join(_LIST.sub("", line).split())
        if line:
            yield line


def _open_dump(path: str):
    if path.endswith(".bz2"):
        return bz2.open(path, "rb")
    if path.endswith(".gz"):
        return gzip.open(path, "rb")
    return open(path, "rb")


def iter_articles(dump: str) -> Iterator[Tuple[str, str, str]]:
    """(id, title, wikitext) of the main-namespace, non-redirect pages of a MediaWiki XML dump."""
    try:
        with _open_dump(dump) as f:
            context = ET.iterparse(f, events=("start", "end"))
            root = None
            for event, elem in context:
                if root is None:
                    root = elem
                if event != "end" or elem.tag.rsplit("}", 1)[-1] != "page":
                    continue
                fields = {child.tag.rsplit("}", 1)[-1]: child for child in elem}
                ns = fields.get("ns")
                revision = fields.get("revision")
                text = None
                if revision is not None:
                    for child in revision:
                        if child.tag.rsplit("}", 1)[-1] == "text":
                            text = child.text or ""
                if (
                    (ns is None or (ns.text or "").strip() == "0")
                    and "redirect" not in fields
                    and text
                    and not text.lstrip().upper().startswith("#REDIRECT")
                ):
                    yield (fields["id"].text or "").strip(), (fields["title"].text or "").strip(), text
                root.clear()
    except (ET.ParseError, OSError, EOFError) as e:
        raise PreprocessError(f"--dump {dump}: cannot read the dump ({e})") from None


def extract(dump: str, out, lang: str) -> int:
    """Write the dump in WikiExtractor's format to the text file `out`; return the number of articles."""
    n = 0
    for page_id, title, text in iter_articles(dump):
        paragraphs = list(clean_wikitext(text))
        if not paragraphs:
            continue
        url = f"https://{lang.replace('_', '-')}.wikipedia.org/wiki?curid={page_id}"
        out.write(f'<doc id="{page_id}" url="{url}" title="{html.escape(title)}">\n{title}\n\n')
        out.write("\n".join(paragraphs) + "\n</doc>\n")
        n += 1
    return n


def extracted_files(path: str):
    if os.path.isfile(path):
        return [path]
    if not os.path.isdir(path):
        raise PreprocessError(f"--extracted {path}: no such file or folder")
    found = sorted(os.path.join(d, f) for d, _, names in os.walk(path) for f in names if f.startswith("wiki_"))
    if not found:
        raise PreprocessError(f"--extracted {path}: no wiki_* files (WikiExtractor's output) in it")
    return found


def plain_lines(files) -> Iterator[str]:
    """XLM's filter on WikiExtractor output: drop `<doc ...>`/`</doc>` lines and empty lines."""
    for path in files:
        for line in LineReader(path, skip_bad_lines=True):
            line = line.strip()
            if line and not line.startswith("<doc ") and line != "</doc>":
                yield line


def add_arguments(parser):
    parser.add_argument("--lang", required=True, help="Wikipedia language code (en, fr, zh_classical, ...)")
    parser.add_argument("--output", required=True, help="RAW_DIR to write train/valid/test.{lang} into")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--dump", help="a local pages-articles dump (.xml.bz2, .xml.gz or .xml)")
    source.add_argument("--download", action="store_true", help="download the latest dump (wget/curl)")
    source.add_argument("--extracted", help="WikiExtractor output: a folder of wiki_* files, or one file")
    parser.add_argument("--dump-dir", default=".", help="where --download puts the dump")
    parser.add_argument("--extracted-output", help="also keep the extracted articles (WikiExtractor format)")
    parser.add_argument("--dry-run", action="store_true", help="print the download command and stop")
    add_split_arguments(parser)


def main(args) -> None:
    lang = check_lang(args.lang)
    if args.download:
        url = DUMP_URL.format(lang=lang)
        dump = download(url, os.path.join(args.dump_dir, os.path.basename(url)), args.dry_run)
        if args.dry_run:
            return
    else:
        dump = args.dump
    os.makedirs(args.output, exist_ok=True)
    if args.extracted:
        files = extracted_files(args.extracted)
    else:
        if not os.path.isfile(dump):
            raise PreprocessError(f"--dump {dump}: no such file")
        target = args.extracted_output or temp_name(os.path.join(args.output, f"wiki.{lang}.extracted"))
        with atomic_output(target) as out:
            n = extract(dump, out, lang)
        log(f"wikipedia: {n} articles extracted from {dump}")
        files = [target]
    plain = temp_name(os.path.join(args.output, f"wiki.{lang}.plain"))
    try:
        with atomic_output(plain) as out:
            for line in plain_lines(files):
                out.write(line + "\n")
        if os.path.getsize(plain) == 0:
            raise PreprocessError(f"no text extracted for '{lang}' from {args.extracted or dump}")
        outputs = {s: {lang: os.path.join(args.output, f"{s}.{lang}")} for s in ("train", "valid", "test")}
        counts = split_aligned({lang: plain}, outputs, args.valid_size, args.test_size, args.seed)
    finally:
        remove_quietly(plain)
        if not args.extracted and not args.extracted_output:
            remove_quietly(target)
    print(
        f"wikipedia [{lang}]: train {counts['train']}, valid {counts['valid']}, test {counts['test']} lines "
        f"in {args.output}"
    )


if __name__ == "__main__":
    from ..cli import main as cli_main

    sys.exit(cli_main(["wikipedia"] + sys.argv[1:]))
