"""The sparse cell reader on worksheet XML as other programs write it (include/forms/sheetxml.py, issue 13).

Each case is legal SpreadsheetML that Excel itself does not write, but other tools do: the reader must give
every cell its own row, column, kind and text, or refuse the part, never shift a value to another cell.
"""

from __future__ import annotations

import polars as pl
import pytest

from include.forms.sheetxml import NotSpreadsheetML, read_cells, shared_strings

NS = 'xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"'
NO_STRINGS = pl.Series([], dtype=pl.String)


def cells(xml: str, strings: pl.Series = NO_STRINGS) -> list[tuple]:
    frame = read_cells(xml.encode(), strings)
    return [tuple(row) for row in frame.select("row", "col", "kind", "text").iter_rows()]


def sheet(body: str, root: str = f"<worksheet {NS}>", end: str = "</worksheet>") -> str:
    return f'<?xml version="1.0"?>{root}<sheetData>{body}</sheetData>{end}'


def test_cells_keep_their_own_references_kinds_and_texts():
    xml = sheet(
        '<row r="2"><c r="B2" t="inlineStr"><is><t>张三</t></is></c><c r="E2"><v>3.70116196501033E17</v></c>'
        '<c r="F2" t="e"><v>#N/A</v></c><c r="G2" t="b"><v>1</v></c><c r="H2" s="3"/></row>'
        '<row r="7"><c r="AT7" t="inlineStr"><is><t xml:space="preserve"> a&amp;b </t></is></c></row>'
    )
    assert cells(xml) == [
        (2, 2, "s", "张三"),
        (2, 5, "n", "3.70116196501033E17"),
        (2, 6, "e", "#N/A"),
        (2, 7, "b", "1"),
        (2, 8, "s", None),
        (7, 46, "s", " a&b "),
    ]


def test_rows_and_cells_without_r_are_counted_as_excel_counts():
    """A row without r follows the row before (empty rows count); a cell without r the cell before."""
    xml = sheet(
        '<row r="3"><c t="inlineStr"><is><t>a</t></is></c><c r="D3"><v>1</v></c><c><v>2</v></c></row>'
        "<row/>"
        "<row><c/><c><v>3</v></c></row>"
    )
    assert cells(xml) == [(3, 1, "s", "a"), (3, 4, "n", "1"), (3, 5, "n", "2"), (5, 1, "s", None), (5, 2, "n", "3")]


def test_a_prefix_single_quotes_and_line_breaks_in_tags_are_read_alike():
    plain = sheet('<row r="1"><c r="A1" t="inlineStr"><is><t>x</t></is></c><c r="B1" t="s"><v>0</v></c></row>')
    odd = (
        "<?xml version='1.0'?><x:worksheet xmlns:x='http://schemas.openxmlformats.org/spreadsheetml/2006/main'>"
        "<x:sheetData><x:row r='1'><x:c\n r='A1'\tt='inlineStr'><x:is><x:t>x</x:t></x:is></x:c>"
        '<x:c r = "B1" t="s"><x:v>0</x:v></x:c></x:row></x:sheetData></x:worksheet>'
    )
    strings = pl.Series(["共享"], dtype=pl.String)
    assert cells(plain, strings) == cells(odd, strings) == [(1, 1, "s", "x"), (1, 2, "s", "共享")]


def test_rich_inline_text_joins_its_runs_and_leaves_out_phonetic_ones():
    xml = sheet(
        '<row r="1"><c r="A1" t="inlineStr"><is><r><t>沈</t></r><r><rPr><b/></rPr><t>然</t></r>'
        '<rPh sb="0" eb="1"><t>SHEN</t></rPh></is></c><c r="B1" t="str"><f>A1</f><v>沈然</v></c></row>'
    )
    frame = read_cells(xml.encode(), NO_STRINGS)
    assert frame["text"].to_list() == ["沈然", "沈然"]
    assert frame["formula"].to_list() == [False, True]


def test_excel_escapes_and_character_references_are_decoded_not_dropped():
    xml = sheet('<row r="1"><c r="A1" t="inlineStr"><is><t>沈_x0007_然&#x1B;_x005F_x0041_</t></is></c></row>')
    assert cells(xml) == [(1, 1, "s", "沈\x07然\x1b_x0041_")]


def test_nothing_after_the_cells_is_read_as_a_cell():
    xml = sheet(
        '<row r="1"><c r="A1"><v>1</v></c></row>',
        end='<conditionalFormatting sqref="A1"><cfRule type="expression"><formula>A1&gt;0</formula></cfRule>'
        "</conditionalFormatting></worksheet>",
    )
    assert read_cells(xml.encode(), NO_STRINGS)["formula"].to_list() == [False]


@pytest.mark.parametrize(
    "body",
    [
        '<row r="1"><c r="A1" t="s"><v>5</v></c></row>',  # a shared string the table does not have
        "<c><v>1</v></c>",  # a cell outside any row, with no reference of its own
    ],
)
def test_a_part_that_does_not_add_up_is_refused(body):
    with pytest.raises(NotSpreadsheetML):
        read_cells(sheet(body).encode(), pl.Series(["a"], dtype=pl.String))


def test_shared_strings_with_rich_text_a_prefix_and_empty_items():
    xml = (
        b'<x:sst xmlns:x="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><x:si><x:t>\xe6\x9d\x8e</x:t></x:si>'
        b'<x:si/><x:si><x:r><x:t>A</x:t></x:r><x:r><x:t xml:space="preserve"> B&amp;C</x:t></x:r>'
        b'<x:rPh sb="0" eb="1"><x:t>PH</x:t></x:rPh></x:si></x:sst>'
    )
    assert shared_strings(xml).to_list() == ["李", "", "A B&C"]


# -- what an adversarial read found (issue 13's second pair of eyes) ---------------------------------


@pytest.mark.parametrize(
    "body",
    [
        '<!-- <c r="P2" t="n"><v>99999</v></c> --><row r="1"><c r="A1"><v>1</v></c></row>',  # a comment
        '<?x <c r="P2"><v>9</v></c> ?><row r="1"><c r="A1"><v>1</v></c></row>',  # a processing instruction
        '<row r="1"><c r="A1" t="inlineStr"><is><t><![CDATA[4组]]></t></is></c></row>',  # CDATA
        '<row r="1"><c r="XFE1"><v>1</v></c></row>',  # past the last column
        '<row r="1"><c r="$C$1"><v>1</v></c></row>',
        '<row r="1"><c r=""><v>1</v></c></row>',
        '<row r="1"><c x="a>b" r="B1"><v>1</v></c></row>',  # a ">" inside a value would cut the tag short
        '<row r="1"><c r="A1" t="S"><v>0</v></c></row>',  # a type Excel does not have
        '<row r="1"><c r="A1" t="s"><v>1.0</v></c></row>',  # a shared-string cell without an index
        '<row r="-1"><c><v>1</v></c></row>',
        '<x:row xmlns:x="http://schemas.openxmlformats.org/spreadsheetml/2006/main" r="1"><x:c r="A1"><x:v>1</x:v></x:c></x:row>',
    ],
)
def test_markup_a_cut_at_tags_could_misread_is_refused(body):
    with pytest.raises(NotSpreadsheetML):
        read_cells(sheet(body).encode(), pl.Series(["a", "b"], dtype=pl.String))


def test_excel_s_extension_list_after_the_cells_is_not_a_second_prefix():
    # Excel 2010+ keeps a drop-down that lists another sheet's cells in x14:dataValidation, its range in <xm:f>
    ext = (
        '<extLst><ext uri="{CCE6A557-97BC-4b89-ADB6-D9C93CAAB3DF}" '
        'xmlns:x14="http://schemas.microsoft.com/office/spreadsheetml/2009/9/main"><x14:dataValidations count="1" '
        'xmlns:xm="http://schemas.microsoft.com/office/excel/2006/main"><x14:dataValidation type="list">'
        "<x14:formula1><xm:f>选项!$A$1:$A$5</xm:f></x14:formula1><xm:sqref>C2:C500</xm:sqref>"
        "</x14:dataValidation></x14:dataValidations></ext></extLst></worksheet>"
    )
    xml = sheet('<row r="2"><c r="C2" t="inlineStr"><is><t>是</t></is></c></row>', end=ext)
    assert cells(xml) == [(2, 3, "s", "是")]


def test_a_comment_in_the_shared_strings_is_refused_not_shifted():
    xml = b'<sst xmlns="m"><si><t>a</t></si><!-- <si><t>13800000000</t></si> --><si><t>b</t></si></sst>'
    with pytest.raises(NotSpreadsheetML):
        shared_strings(xml)


def test_entities_are_decoded_once_and_impossible_characters_become_nul():
    xml = sheet('<row r="1"><c r="A1" t="inlineStr"><is><t>&amp;#49;&#55296;_xD800_</t></is></c></row>')
    assert cells(xml) == [(1, 1, "s", "&#49;\x00\x00")]


def test_a_row_without_r_after_an_empty_numbered_row_follows_it():
    xml = sheet(
        '<row r="1"><c r="A1"><v>1</v></c></row><row r="10"/><row><c r="A11"><v>2</v></c></row><row><c><v>3</v></c></row>'
    )
    assert [(r, c) for r, c, *_ in cells(xml)] == [(1, 1), (11, 1), (12, 1)]


def test_a_value_in_an_inline_cell_is_its_inline_text():
    xml = sheet('<row r="1"><c r="A1" t="inlineStr"><v>9组</v><is><t>4组</t></is></c></row>')
    assert cells(xml) == [(1, 1, "s", "4组")]


def test_the_linear_tag_rewrite_does_not_stall_on_a_long_run():
    """Single quotes send a sheet through the rewrite; a long run of "=" without ">" once made it quadratic."""
    import time

    body = "<row r='1'><c r='A1' t=\"inlineStr\"><is><t>" + "=" * 200_000 + "</t></is></c></row>"
    start = time.perf_counter()
    assert cells(sheet(body))[0][:2] == (1, 1)
    assert time.perf_counter() - start < 10


def test_a_sheet_cut_in_many_chunks_reads_as_one(monkeypatch):
    # A big sheet is cut a chunk at a time (4 MB): a cut falls between any two cells, whatever they hold.
    import include.forms.sheetxml as sheetxml

    rows = []
    for r in range(2, 202):
        rows.append(
            f'<row r="{r}"><c r="A{r}" t="inlineStr"><is><t>张{r}</t></is></c><c r="B{r}"><v>{r * 1.5}</v></c>'
            f'<c r="C{r}" t="s"><v>{r % 2}</v></c><c r="D{r}" t="inlineStr"><is><r><t>富</t></r><r><t>文本</t></r></is></c>'
            f'<c r="E{r}" s="3"/><c r="F{r}" t="inlineStr"><is><t xml:space="preserve"> {r} </t></is></c></row>'
        )
    xml = sheet("".join(rows)).encode()
    strings = pl.Series(["是", "否"], dtype=pl.String)
    whole = read_cells(xml, strings)
    monkeypatch.setattr(sheetxml, "CHUNK_BYTES", 37)
    cut = read_cells(xml, strings)
    assert cut.equals(whole)
    assert whole.height == 200 * 6
    assert whole.filter(pl.col("row") == 201).select("col", "text").rows() == [
        (1, "张201"),
        (2, "301.5"),
        (3, "否"),
        (4, "富文本"),
        (5, None),
        (6, " 201 "),
    ]


def test_lower_case_references_are_read_as_excel_reads_them():
    assert cells(sheet('<row r="2"><c r="b2"><v>1</v></c><c r="aA2"><v>2</v></c></row>')) == [
        (2, 2, "n", "1"),
        (2, 27, "n", "2"),
    ]
