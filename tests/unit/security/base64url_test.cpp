// gatehouse::b64 (src/security/base64url.cpp): unpadded base64url out, and python-jose's
// lenient decoding in (pad to a multiple of 4, then binascii.a2b_base64 non-strict).
// Expected values are what jose.utils.base64url_decode returns for the same input.
#include "security/base64url.hpp"

#include <gtest/gtest.h>

#include <optional>
#include <string>

namespace {

namespace b64 = gatehouse::b64;

TEST(Base64UrlEncode, NoPaddingUrlAlphabet) {
  EXPECT_EQ(b64::encode_url(""), "");
  EXPECT_EQ(b64::encode_url("f"), "Zg");
  EXPECT_EQ(b64::encode_url("fo"), "Zm8");
  EXPECT_EQ(b64::encode_url("foo"), "Zm9v");
  EXPECT_EQ(b64::encode_url("foob"), "Zm9vYg");
  EXPECT_EQ(b64::encode_url("\xfb\xff"), "-_8");
}

TEST(Base64UrlEncode, AppendsToOutput) {
  std::string out = "a.";
  b64::encode_url("foo", out);
  EXPECT_EQ(out, "a.Zm9v");
}

TEST(Base64UrlDecode, DecodesWithOrWithoutPadding) {
  EXPECT_EQ(b64::decode_jose("Zm9v"), "foo");
  EXPECT_EQ(b64::decode_jose("Zg"), "f");
  EXPECT_EQ(b64::decode_jose("Zg=="), "f");
  EXPECT_EQ(b64::decode_jose("Zg="), "f");
  EXPECT_EQ(b64::decode_jose("Zm9vYg"), "foob");
  EXPECT_EQ(b64::decode_jose(""), "");
}

TEST(Base64UrlDecode, AcceptsBothAlphabets) {
  EXPECT_EQ(b64::decode_jose("-_8"), "\xfb\xff");
  EXPECT_EQ(b64::decode_jose("+/8"), "\xfb\xff");
}

TEST(Base64UrlDecode, SkipsCharactersOutsideTheAlphabet) {
  EXPECT_EQ(b64::decode_jose("Zm!9v"), "foo");
}

TEST(Base64UrlDecode, PadAtQuadStartSkipped) { EXPECT_EQ(b64::decode_jose("Zm9v=Zm9v"), "foofoo"); }

TEST(Base64UrlDecode, CompletePadSequenceEndsDecoding) {
  EXPECT_EQ(b64::decode_jose("Zg==Zm9v"), "f");
}

TEST(Base64UrlDecode, OneCharTooManyRefused) {
  EXPECT_EQ(b64::decode_jose("Z"), std::nullopt);
  EXPECT_EQ(b64::decode_jose("Zm9vZ"), std::nullopt);
}

TEST(Base64UrlDecode, IncorrectPaddingRefused) {
  EXPECT_EQ(b64::decode_jose("Zg=x"), std::nullopt);
  EXPECT_EQ(b64::decode_jose("Z=g="), std::nullopt);
}

TEST(Base64UrlDecode, RoundTripsEveryByte) {
  std::string all;
  for (int c = 0; c < 256; ++c) all += static_cast<char>(c);
  for (std::size_t n = 0; n <= all.size(); n += 37) {
    auto part = all.substr(0, n);
    EXPECT_EQ(b64::decode_jose(b64::encode_url(part)), part);
  }
}

}  // namespace
