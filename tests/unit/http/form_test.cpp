// gatehouse::http form parsing (src/http/form.cpp): bodies as Starlette 0.26.1 with
// python-multipart 0.0.5 parses them. Every expected value below was checked against
// starlette.requests.Request.form() on the same bytes and Content-Type.
#include "http/form.hpp"

#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

namespace {

namespace http = gatehouse::http;
using Pairs = std::vector<std::pair<std::string, std::string>>;

Pairs pairs(const std::vector<gatehouse::FormField>& fields) {
  Pairs out;
  for (const auto& f : fields) out.emplace_back(f.name, f.value);
  return out;
}

Pairs urlencoded(std::string_view body) {
  auto r = http::parse_urlencoded(body);
  if (!r) return {{"<error>", r.error()}};
  return pairs(*r);
}

// The fields of a form body, or {"<error>", detail} when parsing fails.
Pairs form(std::string_view content_type, std::string_view body) {
  auto r = http::parse_form(content_type, body);
  if (!r) return {{"<error>", r.error()}};
  return pairs(r->fields());
}

constexpr std::string_view kMultipart = "multipart/form-data; boundary=XyZ";

// ---- urlencoded ----------------------------------------------------------------------

TEST(Urlencoded, AmpersandSeparatesFields) {
  EXPECT_EQ(urlencoded("a=1&b=2"), (Pairs{{"a", "1"}, {"b", "2"}}));
}

TEST(Urlencoded, SemicolonSeparatesWhenNoAmpersand) {
  EXPECT_EQ(urlencoded("a=1;b=2"), (Pairs{{"a", "1"}, {"b", "2"}}));
}

TEST(Urlencoded, SemicolonIsDataWhileAnAmpersandRemains) {
  // python-multipart looks for '&' first and only falls back to ';' when none is left.
  EXPECT_EQ(urlencoded("a=1;b=2&c=3"), (Pairs{{"a", "1;b=2"}, {"c", "3"}}));
  EXPECT_EQ(urlencoded("a;b=1&c=2"), (Pairs{{"a;b", "1"}, {"c", "2"}}));
}

TEST(Urlencoded, PlusIsSpaceAndPercentDecoded) {
  EXPECT_EQ(urlencoded("a=x+y%20z%2B"), (Pairs{{"a", "x y z+"}}));
  EXPECT_EQ(urlencoded("%75sername=j"), (Pairs{{"username", "j"}}));
}

TEST(Urlencoded, InvalidPercentEscapesKept) {
  EXPECT_EQ(urlencoded("a=%ZZ%4&b=%"), (Pairs{{"a", "%ZZ%4"}, {"b", "%"}}));
}

TEST(Urlencoded, PercentEncodedUtf8Decoded) {
  EXPECT_EQ(urlencoded("a=%C3%A9"), (Pairs{{"a", "\xc3\xa9"}}));
}

TEST(Urlencoded, InvalidUtf8PercentSequencesBecomeReplacementChars) {
  // bytes.decode("utf-8", "replace"): one U+FFFD per maximal invalid subpart
  EXPECT_EQ(urlencoded("b=%FF&c=%E0%80&d=%F0%90%80A&e=%ED%A0%80"),
            (Pairs{{"b", "\xef\xbf\xbd"},
                   {"c", "\xef\xbf\xbd\xef\xbf\xbd"},
                   {"d",
                    "\xef\xbf\xbd"
                    "A"},
                   {"e", "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"}}));
}

TEST(Urlencoded, RawHighBytesAreLatin1) {
  // the body is decoded as latin-1 before unquote_plus: raw UTF-8 "é" is "Ã©"
  EXPECT_EQ(urlencoded("a=\xc3\xa9&b=\xff"), (Pairs{{"a", "\xc3\x83\xc2\xa9"}, {"b", "\xc3\xbf"}}));
}

TEST(Urlencoded, RawByteEndsPercentRun) {
  // "%C3" alone is invalid UTF-8; the raw 0xa9 that follows is the latin-1 '©'
  EXPECT_EQ(urlencoded("a=%C3\xa9"), (Pairs{{"a", "\xef\xbf\xbd\xc2\xa9"}}));
}

TEST(Urlencoded, TrailingNameWithoutEqualsDropped) {
  EXPECT_EQ(urlencoded("a=1&password"), (Pairs{{"a", "1"}}));
}

TEST(Urlencoded, NameWithoutEqualsBeforeSeparatorIsEmptyField) {
  EXPECT_EQ(urlencoded("a&b=1"), (Pairs{{"a", ""}, {"b", "1"}}));
}

TEST(Urlencoded, DuplicatesAllKeptInOrder) {
  EXPECT_EQ(urlencoded("a=1&a=2&a=3"), (Pairs{{"a", "1"}, {"a", "2"}, {"a", "3"}}));
}

TEST(Urlencoded, RepeatedSeparatorsSkipped) {
  EXPECT_EQ(urlencoded("&&a=1&&;b=2"), (Pairs{{"a", "1"}, {"b", "2"}}));
}

TEST(Urlencoded, OnlyFirstEqualsSplits) { EXPECT_EQ(urlencoded("a==1"), (Pairs{{"a", "=1"}})); }

TEST(Urlencoded, EmptyNamesAndValues) {
  EXPECT_EQ(urlencoded("=v&a="), (Pairs{{"", "v"}, {"a", ""}}));
  EXPECT_EQ(urlencoded(""), Pairs{});
}

std::string numbered_fields(int n, std::string_view value = "=1") {
  std::string body;
  for (int i = 0; i < n; ++i) {
    if (i > 0) body += '&';
    body += 'a';
    body += std::to_string(i);
    body += value;
  }
  return body;
}

TEST(Urlencoded, AtMost1000Fields) {
  EXPECT_EQ(urlencoded(numbered_fields(1000)).size(), 1000u);
  EXPECT_EQ(urlencoded(numbered_fields(1001)),
            (Pairs{{"<error>", "Too many fields. Maximum number of fields is 1000."}}));
  // a trailing name without '=' is no field
  EXPECT_EQ(urlencoded(numbered_fields(1000) + "&tail").size(), 1000u);
}

TEST(Unquote, PlusOnlyInUnquotePlus) {
  EXPECT_EQ(http::unquote_plus("a+b%2B"), "a b+");
  EXPECT_EQ(http::unquote("a+b%2B"), "a+b+");
  EXPECT_EQ(http::unquote("/it%65ms/"), "/items/");
}

TEST(FormDataGet, ReturnsLastValue) {
  auto fields = http::parse_urlencoded("a=1&b=x&a=2");
  ASSERT_TRUE(fields.ok());
  gatehouse::FormData data(*fields);
  ASSERT_NE(data.get("a"), nullptr);
  EXPECT_EQ(data.get("a")->value, "2");
  EXPECT_EQ(data.get("b")->value, "x");
  EXPECT_EQ(data.get("c"), nullptr);
  EXPECT_EQ(data.get("A"), nullptr);  // names are case-sensitive
}

// ---- parse_options_header -------------------------------------------------------------

TEST(OptionsHeader, LowerCasedAndStrippedWithoutParams) {
  auto h = http::parse_options_header(" APPLICATION/X-WWW-FORM-URLENCODED ");
  EXPECT_EQ(h.value, "application/x-www-form-urlencoded");
  EXPECT_TRUE(h.params.empty());
}

TEST(OptionsHeader, ValueKeptVerbatimWithParams) {
  auto h = http::parse_options_header("Multipart/Form-Data; BOUNDARY=AbC; charset=utf-8");
  EXPECT_EQ(h.value, "Multipart/Form-Data");
  ASSERT_NE(h.param("boundary"), nullptr);
  EXPECT_EQ(*h.param("boundary"), "AbC");  // keys lower-cased, values not
  ASSERT_NE(h.param("charset"), nullptr);
  EXPECT_EQ(*h.param("charset"), "utf-8");
}

TEST(OptionsHeader, QuotedValueUnquotedAndUnescaped) {
  auto h = http::parse_options_header(R"(multipart/form-data; boundary="a b;c\"d\\e")");
  ASSERT_NE(h.param("boundary"), nullptr);
  EXPECT_EQ(*h.param("boundary"), "a b;c\"d\\e");
}

TEST(OptionsHeader, LastDuplicateParamWins) {
  auto h = http::parse_options_header("multipart/form-data; boundary=XyZ; boundary=Q");
  ASSERT_NE(h.param("boundary"), nullptr);
  EXPECT_EQ(*h.param("boundary"), "Q");
}

TEST(OptionsHeader, EmptyParamValueIsNoParam) {
  auto h = http::parse_options_header("multipart/form-data; boundary=");
  EXPECT_EQ(h.param("boundary"), nullptr);
}

TEST(OptionsHeader, EmptyHeader) {
  auto h = http::parse_options_header("");
  EXPECT_EQ(h.value, "");
  EXPECT_TRUE(h.params.empty());
}

// ---- multipart --------------------------------------------------------------------------

TEST(Multipart, FieldsInOrderValuesNotPercentDecoded) {
  EXPECT_EQ(form(kMultipart,
                 "--XyZ\r\nContent-Disposition: form-data; name=\"username\"\r\n\r\njohndoe\r\n"
                 "--XyZ\r\nContent-Disposition: form-data; name=\"password\"\r\n\r\ns%65cret\r\n"
                 "--XyZ--\r\n"),
            (Pairs{{"username", "johndoe"}, {"password", "s%65cret"}}));
}

TEST(Multipart, QuotedBoundary) {
  EXPECT_EQ(form("multipart/form-data; boundary=\"a b;c\"",
                 "--a b;c\r\nContent-Disposition: form-data; name=\"username\"\r\n\r\njohndoe\r\n"
                 "--a b;c--\r\n"),
            (Pairs{{"username", "johndoe"}}));
}

TEST(Multipart, CharsetBeforeBoundaryAndEpilogueIgnored) {
  EXPECT_EQ(form("multipart/form-data; charset=utf-8; boundary=XyZ",
                 "--XyZ\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\n\xc3\xa9\r\n"
                 "--XyZ\r\nContent-Disposition: form-data; name=\"b\"\r\n\r\n\xff\r\n"
                 "--XyZ--\r\nepilogue"),
            (Pairs{{"a", "\xc3\xa9"}, {"b", "\xc3\xbf"}}));  // invalid UTF-8 falls back to latin-1
}

TEST(Multipart, ValueMayContainCrlf) {
  EXPECT_EQ(
      form(kMultipart,
           "--XyZ\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nline1\r\nline2\r\n--XyZ--"),
      (Pairs{{"a", "line1\r\nline2"}}));
}

TEST(Multipart, HeaderNamesAndParamKeysAnyCase) {
  EXPECT_EQ(form(kMultipart, "--XyZ\r\ncontent-disposition: form-data; NAME=a\r\n\r\nv\r\n--XyZ--"),
            (Pairs{{"a", "v"}}));
}

TEST(Multipart, EscapedQuoteInName) {
  EXPECT_EQ(form(kMultipart,
                 "--XyZ\r\nContent-Disposition: form-data; name=\"a\\\"b\"\r\n\r\n1\r\n--XyZ--"),
            (Pairs{{"a\"b", "1"}}));
}

TEST(Multipart, MissingBoundary) {
  EXPECT_EQ(form("multipart/form-data", "--XyZ\r\n"),
            (Pairs{{"<error>", "Missing boundary in multipart."}}));
  EXPECT_EQ(form("multipart/form-data; boundary=", "--\r\n"),
            (Pairs{{"<error>", "Missing boundary in multipart."}}));
}

TEST(Multipart, GarbageBodyIsParseError) {
  EXPECT_EQ(form(kMultipart, "garbage"),
            (Pairs{{"<error>", "There was an error parsing the body"}}));
}

TEST(Multipart, PreambleIsParseError) {
  EXPECT_EQ(
      form(kMultipart,
           "preamble\r\n--XyZ\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\n1\r\n--XyZ--"),
      (Pairs{{"<error>", "There was an error parsing the body"}}));
}

TEST(Multipart, BareLfLineEndsAreParseError) {
  EXPECT_EQ(form(kMultipart, "--XyZ\nContent-Disposition: form-data; name=\"a\"\n\n1\n--XyZ--"),
            (Pairs{{"<error>", "There was an error parsing the body"}}));
}

TEST(Multipart, PartWithoutNameIsItsOwnError) {
  EXPECT_EQ(
      form(kMultipart, "--XyZ\r\nContent-Disposition: form-data\r\n\r\nx\r\n--XyZ--\r\n"),
      (Pairs{{"<error>", "The Content-Disposition header field \"name\" must be provided."}}));
}

TEST(Multipart, PartWithoutAnyHeaderNeedsAName) {
  // python-multipart ends the (empty) header block at the first CRLF, and Starlette then
  // finds no name.
  EXPECT_EQ(
      form(kMultipart, "--XyZ\r\n\r\nvalue\r\n--XyZ--"),
      (Pairs{{"<error>", "The Content-Disposition header field \"name\" must be provided."}}));
}

TEST(Multipart, FilePartFlagged) {
  auto r = http::parse_form(
      kMultipart,
      "--XyZ\r\nContent-Disposition: form-data; name=\"f\"; filename=\"a.txt\"\r\n"
      "Content-Type: text/plain\r\n\r\nhello\r\n"
      "--XyZ\r\nContent-Disposition: form-data; name=\"g\"\r\n\r\nx\r\n--XyZ--\r\n");
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->fields().size(), 2u);
  EXPECT_EQ(r->fields()[0].name, "f");
  EXPECT_TRUE(r->fields()[0].is_file);
  EXPECT_FALSE(r->fields()[1].is_file);
}

TEST(Multipart, EmptyFilenameStillAFile) {
  auto r = http::parse_form(
      kMultipart,
      "--XyZ\r\nContent-Disposition: form-data; name=\"a\"; filename=\"\"\r\n\r\nv\r\n--XyZ--");
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->fields().size(), 1u);
  EXPECT_TRUE(r->fields()[0].is_file);
}

TEST(Multipart, LastContentDispositionWins) {
  EXPECT_EQ(form(kMultipart,
                 "--XyZ\r\nContent-Disposition: form-data; name=\"a\"\r\n"
                 "Content-Disposition: form-data; name=\"b\"\r\n\r\n1\r\n--XyZ--"),
            (Pairs{{"b", "1"}}));
}

TEST(Multipart, EmptyBodyHasNoFields) {
  EXPECT_EQ(form(kMultipart, ""), Pairs{});
  EXPECT_EQ(form(kMultipart, "--XyZ"), Pairs{});
}

TEST(Multipart, MissingClosingBoundaryDropsLastPart) {
  EXPECT_EQ(form(kMultipart,
                 "--XyZ\r\nContent-Disposition: form-data; name=\"username\"\r\n\r\njohndoe\r\n"
                 "--XyZ\r\nContent-Disposition: form-data; name=\"password\"\r\n\r\nsecret"),
            (Pairs{{"username", "johndoe"}}));
}

TEST(Multipart, DelimiterWithoutCrlfOrDashesAtEndDropsLastPart) {
  // python-multipart ends a part only on the CRLF or "--" after its delimiter.
  EXPECT_EQ(
      form(kMultipart,
           "--XyZ\r\nContent-Disposition: form-data; name=\"username\"\r\n\r\njohndoe\r\n"
           "--XyZ\r\nContent-Disposition: form-data; name=\"password\"\r\n\r\nsecret\r\n--XyZ"),
      (Pairs{{"username", "johndoe"}}));
}

TEST(Multipart, SingleDashAfterLastDelimiterDropsLastPart) {
  EXPECT_EQ(
      form(kMultipart, "--XyZ\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nv\r\n--XyZ-"),
      Pairs{});
}

TEST(Multipart, DelimiterTextFollowedByOtherCharIsData) {
  EXPECT_EQ(
      form(kMultipart,
           "--XyZ\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nv\r\n--XyZX\r\n--XyZ--"),
      (Pairs{{"a", "v\r\n--XyZX"}}));
}

TEST(Multipart, ClosingDelimiterFirstIsParseError) {
  // python-multipart wants CRLF after the first delimiter.
  EXPECT_EQ(form(kMultipart, "--XyZ--"),
            (Pairs{{"<error>", "There was an error parsing the body"}}));
}

TEST(Multipart, CharsetParamDecodesValues) {
  // Starlette decodes part names and values with the Content-Type's charset.
  EXPECT_EQ(
      form("multipart/form-data; charset=latin-1; boundary=XyZ",
           "--XyZ\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\n\xc3\xa9\r\n--XyZ--\r\n"),
      (Pairs{{"a", "\xc3\x83\xc2\xa9"}}));
}

// ---- parse_form: by Content-Type ---------------------------------------------------------

TEST(ParseForm, UrlencodedAnyCaseWithoutParams) {
  EXPECT_EQ(form("APPLICATION/X-WWW-FORM-URLENCODED", "a=1"), (Pairs{{"a", "1"}}));
  EXPECT_EQ(form(" application/x-www-form-urlencoded ", "a=1"), (Pairs{{"a", "1"}}));
}

TEST(ParseForm, UrlencodedWithCharset) {
  EXPECT_EQ(form("application/x-www-form-urlencoded; charset=utf-8", "a=1"), (Pairs{{"a", "1"}}));
  EXPECT_EQ(form("application/x-www-form-urlencoded;", "a=1"), (Pairs{{"a", "1"}}));
}

TEST(ParseForm, MixedCaseWithParamsIsNotAForm) {
  EXPECT_EQ(form("Application/X-WWW-Form-Urlencoded; charset=utf-8", "a=1"), Pairs{});
  EXPECT_EQ(form("Multipart/Form-Data; boundary=XyZ",
                 "--XyZ\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\n1\r\n--XyZ--"),
            Pairs{});
  EXPECT_EQ(form("application/x-www-form-urlencoded ; charset=utf-8", "a=1"), Pairs{});
}

TEST(ParseForm, OtherTypesGiveEmptyForm) {
  EXPECT_EQ(form("application/json", R"({"a":1})"), Pairs{});
  EXPECT_EQ(form("text/plain", "a=1"), Pairs{});
  EXPECT_EQ(form("", "a=1"), Pairs{});
}

TEST(ParseForm, MultipartWithoutSpaceAfterSemicolon) {
  EXPECT_EQ(form("multipart/form-data;boundary=XyZ",
                 "--XyZ\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nv\r\n--XyZ--"),
            (Pairs{{"a", "v"}}));
}

}  // namespace
