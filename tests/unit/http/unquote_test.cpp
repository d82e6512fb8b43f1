// unquote/unquote_plus return plain ASCII as it is without decoding it; every string
// that needs decoding (a '%', a '+' for unquote_plus, a byte of 0x80 or more) is still
// decoded as uvicorn's and urllib's unquote do.
#include <gtest/gtest.h>

#include <string>

#include "http/form.hpp"

namespace {

namespace http = gatehouse::http;

TEST(UnquoteFastPath, PlainAsciiAsItIs) {
  EXPECT_EQ(http::unquote(""), "");
  EXPECT_EQ(http::unquote("/users/me/"), "/users/me/");
  EXPECT_EQ(http::unquote("/a b;c=d,e\x01\x7f"), "/a b;c=d,e\x01\x7f");
  EXPECT_EQ(http::unquote("/a+b"), "/a+b");  // '+' is a space only for unquote_plus
  EXPECT_EQ(http::unquote_plus("/users/me/"), "/users/me/");
}

TEST(UnquoteFastPath, WhatNeedsDecodingIsDecoded) {
  EXPECT_EQ(http::unquote_plus("a+b"), "a b");
  EXPECT_EQ(http::unquote("/a%20b"), "/a b");
  EXPECT_EQ(http::unquote("/%"), "/%");
  EXPECT_EQ(http::unquote("/%zz%4"), "/%zz%4");
  EXPECT_EQ(http::unquote("/caf%C3%A9"), "/caf\xc3\xa9");
  EXPECT_EQ(http::unquote("/%ff"), "/\xef\xbf\xbd");     // invalid UTF-8: U+FFFD
  EXPECT_EQ(http::unquote("/caf\xe9"), "/caf\xc3\xa9");  // a raw byte is latin-1
  EXPECT_EQ(http::unquote("/\xc3\xa9"), "/\xc3\x83\xc2\xa9");
}

}  // namespace
