// gatehouse::PasswordHasher (src/security/password.cpp): bcrypt hashes made by
// passlib/bcrypt and argon2id hashes made elsewhere verify unchanged.
//
// The cost-4 bcrypt hashes below were made with Debian's python3-bcrypt 3.2.2 and
// python3-passlib 1.7.4 when these tests were written, e.g.
//   /usr/bin/python3 -c 'import bcrypt; print(bcrypt.hashpw(b"secret", bcrypt.gensalt(4)))'
//   /usr/bin/python3 -c 'from passlib.hash import bcrypt; print(bcrypt.using(ident="2y",
//   rounds=4).hash("secret"))'
// Only the reference's two cost-12 hashes are slow (~0.2 s a verify): few tests use them.
#include "gatehouse/password.hpp"

#include <gtest/gtest.h>

#include <stdexcept>
#include <string>

#include "gatehouse/store.hpp"

namespace {

using gatehouse::Argon2Params;
using gatehouse::PasswordHasher;

// FastAPI's tutorial hashes (bcrypt cost 12), from reference/app.py.
constexpr const char* kJohndoeHash =
    "$2b$12$h93UtAq4.OvsQYxEl8vsAeF7d4wVrgIFCdzcA842pX0hYxsStodHq";  // secret
constexpr const char* kAliceHash =
    "$2b$12$cPRekB3/i.lDE1jCBsT1s.9aigjzvk9XmvxL6jlhyYLjGPUEFzuWm";  // secret2

// bcrypt.hashpw(b"secret", bcrypt.gensalt(4))
constexpr const char* kSecret2b = "$2b$04$98vQvzwYuCGDlpa4Rcx1.u6yieFYSLAl5zYAjEkuoUWHKrRWBVJ5e";
// bcrypt.hashpw(b"secret", bcrypt.gensalt(4, prefix=b"2a"))
constexpr const char* kSecret2a = "$2a$04$2meq1aKnGsExX8x5ymnLnOtJWPqQ82cimhrkUZOaeXV/sfHowqq5q";
// passlib.hash.bcrypt.using(ident="2y", rounds=4).hash("secret")
constexpr const char* kSecret2y = "$2y$04$kX.MxIlttRK9OA03p.ECDOaICXTmbi7U6eG/tkGtO97ONwtLuQNku";
// bcrypt.hashpw(kAlphabet100[:72], bcrypt.gensalt(4))
constexpr const char* kFirst72Hash = "$2b$04$/MrQkRP13MR1SNG6qC8JJOTuHjIKrcOYmMJoTEvRDv0vFubNwLG5m";
// bcrypt.hashpw(b"sec", bcrypt.gensalt(4))
constexpr const char* kSecHash = "$2b$04$EWbzDa54XKPM2KmESvXj/uRiZ5hscS/y3N9s2gSCd7AQGdk7NMxIi";
// bcrypt.hashpw(b"x" * 72, bcrypt.gensalt(4))
constexpr const char* kX72Hash = "$2b$04$Mx6pOVXff31hWCxIaCGz4Oi8nyCA8/ePd8.Wo4AulBsEfInJndDN2";
// bcrypt.hashpw("josé".encode(), bcrypt.gensalt(4))
constexpr const char* kJoseUtf8Hash =
    "$2b$04$vH6bIzN0lKf3Rq9bOzgTo.Yhjb1DxrPFaCfKCe48Uh3DJTKWgZ0Me";

// Argon2id test vectors of the reference implementation (phc-winner-argon2's test.c and
// README; the m=256 one is also in libar2's tests, an independent implementation):
// password "password", salt "somesalt".
constexpr const char* kPhcArgon2idSmall =
    "$argon2id$v=19$m=256,t=2,p=1$c29tZXNhbHQ$nf65EOgLrQMR/uIPnA4rEsF5h7TKyQwu9U1bMCHGi/4";
constexpr const char* kPhcArgon2idReadme =
    "$argon2id$v=19$m=65536,t=2,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc";

std::string alphabet(std::size_t n) {
  std::string s;
  for (std::size_t i = 0; i < n; ++i) s += static_cast<char>('a' + static_cast<int>(i % 26));
  return s;
}

const PasswordHasher& fast_hasher() {
  static const PasswordHasher h(Argon2Params{1024, 1, 1});
  return h;
}

// ---- the reference's hashes ----------------------------------------------------------------

TEST(Bcrypt, ReferenceHashesVerify) {
  EXPECT_TRUE(fast_hasher().verify("secret", kJohndoeHash));
  EXPECT_TRUE(fast_hasher().verify("secret2", kAliceHash));
}

TEST(Bcrypt, WrongPasswordsDoNotVerifyReferenceHashes) {
  EXPECT_FALSE(fast_hasher().verify("Secret", kJohndoeHash));
  EXPECT_FALSE(fast_hasher().verify("secret", kAliceHash));
}

TEST(Bcrypt, DemoUsersCarryTheReferenceHashes) {
  auto users = gatehouse::demo_users();
  ASSERT_EQ(users.size(), 2u);
  EXPECT_EQ(users[0].username, "johndoe");
  EXPECT_EQ(users[0].hashed_password, kJohndoeHash);
  EXPECT_FALSE(users[0].disabled);
  EXPECT_EQ(users[1].username, "alice");
  EXPECT_EQ(users[1].hashed_password, kAliceHash);
  EXPECT_TRUE(users[1].disabled);
}

// ---- bcrypt variants ---------------------------------------------------------------------

TEST(Bcrypt, Prefix2bVerifies) {
  EXPECT_TRUE(fast_hasher().verify("secret", kSecret2b));
  EXPECT_FALSE(fast_hasher().verify("secreT", kSecret2b));
}

TEST(Bcrypt, Prefix2aVerifies) {
  EXPECT_TRUE(fast_hasher().verify("secret", kSecret2a));
  EXPECT_FALSE(fast_hasher().verify("secret ", kSecret2a));
}

TEST(Bcrypt, Prefix2yVerifies) {
  EXPECT_TRUE(fast_hasher().verify("secret", kSecret2y));
  EXPECT_FALSE(fast_hasher().verify("", kSecret2y));
}

TEST(Bcrypt, Utf8PasswordVerifies) {
  EXPECT_TRUE(fast_hasher().verify("jos\xc3\xa9", kJoseUtf8Hash));
  EXPECT_FALSE(fast_hasher().verify("jos\xe9", kJoseUtf8Hash));  // latin-1 bytes differ
}

TEST(Bcrypt, OnlyFirst72BytesCount) {
  // bcrypt (and so the reference) looks at the first 72 bytes of the password.
  const auto pw100 = alphabet(100);
  EXPECT_TRUE(fast_hasher().verify(pw100, kFirst72Hash));
  EXPECT_TRUE(fast_hasher().verify(pw100.substr(0, 72), kFirst72Hash));
  auto changed_after_72 = pw100;
  changed_after_72[80] = '#';
  EXPECT_TRUE(fast_hasher().verify(changed_after_72, kFirst72Hash));
  auto changed_at_72 = pw100;
  changed_at_72[71] = '#';
  EXPECT_FALSE(fast_hasher().verify(changed_at_72, kFirst72Hash));
  EXPECT_FALSE(fast_hasher().verify(pw100.substr(0, 71), kFirst72Hash));
}

TEST(Bcrypt, NulByteNeverMatches) {
  // crypt() would stop at the NUL and see "sec"; gatehouse refuses such a password.
  EXPECT_TRUE(fast_hasher().verify("sec", kSecHash));
  EXPECT_FALSE(fast_hasher().verify(std::string("sec\0ret", 7), kSecHash));
  EXPECT_FALSE(fast_hasher().verify(std::string("sec\0", 4), kSecHash));
}

TEST(Bcrypt, PasswordsUpTo4096BytesCheckedOnTheirFirst72) {
  // SPEC A: up to 4096 bytes a bcrypt hash is checked as the reference (passlib +
  // bcrypt) checks it: passlib's CryptContext.verify("x" * 4096, kX72Hash) is True.
  EXPECT_TRUE(fast_hasher().verify(std::string(511, 'x'), kX72Hash));
  // libxcrypt's crypt_rn refuses phrases of CRYPT_MAX_PASSPHRASE_SIZE (512) bytes or more
  EXPECT_TRUE(fast_hasher().verify(std::string(512, 'x'), kX72Hash));
  EXPECT_TRUE(fast_hasher().verify(std::string(PasswordHasher::kMaxPasswordBytes, 'x'), kX72Hash));
}

TEST(Bcrypt, LongerThan4096BytesNeverMatches) {
  EXPECT_TRUE(fast_hasher().verify(std::string(72, 'x'), kX72Hash));
  EXPECT_FALSE(
      fast_hasher().verify(std::string(PasswordHasher::kMaxPasswordBytes + 1, 'x'), kX72Hash));
  EXPECT_FALSE(fast_hasher().verify(std::string(100000, 'x'), kX72Hash));
}

TEST(Bcrypt, HashBcryptRoundTrip) {
  auto h = PasswordHasher::hash_bcrypt("p\xc3\xa4ss word", 4);
  EXPECT_EQ(h.substr(0, 7), "$2b$04$");
  EXPECT_EQ(h.size(), 60u);
  EXPECT_TRUE(fast_hasher().verify("p\xc3\xa4ss word", h));
  EXPECT_FALSE(fast_hasher().verify("p\xc3\xa4ss Word", h));
  EXPECT_NE(PasswordHasher::hash_bcrypt("same", 4),
            PasswordHasher::hash_bcrypt("same", 4));  // salted
}

TEST(Bcrypt, HashBcryptRefusesNulAndOverlongPasswords) {
  EXPECT_THROW((void)PasswordHasher::hash_bcrypt(std::string("a\0b", 3), 4), std::invalid_argument);
  EXPECT_THROW((void)PasswordHasher::hash_bcrypt(std::string(5000, 'a'), 4), std::invalid_argument);
}

// ---- argon2id ------------------------------------------------------------------------------

TEST(Argon2, ReferenceImplementationVectorsVerify) {
  EXPECT_TRUE(fast_hasher().verify("password", kPhcArgon2idSmall));
  EXPECT_FALSE(fast_hasher().verify("passwore", kPhcArgon2idSmall));
  EXPECT_TRUE(fast_hasher().verify("password", kPhcArgon2idReadme));
  EXPECT_FALSE(fast_hasher().verify("Password", kPhcArgon2idReadme));
}

TEST(Argon2, Argon2CffiHashesVerify) {
  // Made with argon2-cffi 21.1 (what pwdlib wraps): PasswordHasher() with its defaults
  // (m=102400, t=2, p=8), and PasswordHasher(memory_cost=1024, time_cost=1, parallelism=2).
  const char* defaults =
      "$argon2id$v=19$m=102400,t=2,p=8$qb6d/X1DWm0lD8qJTbz7PQ$8yL+P0Japkegc32hDildQQ";
  const char* small = "$argon2id$v=19$m=1024,t=1,p=2$tWpK5IdxuE2xEpwcOBu0OQ$1qE/aRVmionvj15Dx/4Q+w";
  EXPECT_TRUE(fast_hasher().verify("pwdlib-secret", defaults));
  EXPECT_TRUE(fast_hasher().verify("pwdlib-secret", small));
  EXPECT_FALSE(fast_hasher().verify("pwdlib-secreT", small));
  EXPECT_TRUE(fast_hasher().needs_rehash(small));  // other parameters than configured
}

TEST(Argon2, HashVerifyRoundTrip) {
  auto h = fast_hasher().hash("correct horse");
  EXPECT_EQ(h.rfind("$argon2id$v=19$m=1024,t=1,p=1$", 0), 0u) << h;
  EXPECT_TRUE(fast_hasher().verify("correct horse", h));
  EXPECT_FALSE(fast_hasher().verify("correct horsE", h));
  EXPECT_NE(fast_hasher().hash("correct horse"), h);  // random salt
}

TEST(Argon2, NulAndOverlongPasswordsNeverMatch) {
  auto h = fast_hasher().hash(std::string("a\0b", 3));  // argon2 itself could hash it
  EXPECT_FALSE(fast_hasher().verify(std::string("a\0b", 3), h));
  const std::string long_pw(PasswordHasher::kMaxPasswordBytes + 1, 'y');
  auto h2 = fast_hasher().hash(long_pw);
  EXPECT_FALSE(fast_hasher().verify(long_pw, h2));
}

TEST(Argon2, NeedsRehashWhenParamsDiffer) {
  auto h = fast_hasher().hash("pw");
  EXPECT_FALSE(fast_hasher().needs_rehash(h));
  EXPECT_TRUE(PasswordHasher(Argon2Params{2048, 1, 1}).needs_rehash(h));
  EXPECT_TRUE(PasswordHasher(Argon2Params{1024, 2, 1}).needs_rehash(h));
  EXPECT_TRUE(PasswordHasher(Argon2Params{1024, 1, 2}).needs_rehash(h));
  EXPECT_TRUE(fast_hasher().needs_rehash(kPhcArgon2idSmall));
}

TEST(Argon2, NoRehashForBcrypt) { EXPECT_FALSE(fast_hasher().needs_rehash(kSecret2b)); }

TEST(Argon2, MalformedArgon2idNeedsRehash) {
  EXPECT_TRUE(fast_hasher().needs_rehash("$argon2id$v=19$garbage"));
}

TEST(Argon2, DefaultParamsAreOwasp) {
  PasswordHasher h;
  EXPECT_EQ(h.params().memory_kib, 19u * 1024u);
  EXPECT_EQ(h.params().iterations, 2u);
  EXPECT_EQ(h.params().parallelism, 1u);
}

// ---- malformed and unknown hashes ----------------------------------------------------------

TEST(MalformedHash, NeverMatches) {
  const std::string good = kSecret2b;
  for (const std::string& bad :
       {std::string(), std::string("secret"), std::string("$2b$"), std::string("$2b$04$short"),
        good.substr(0, 59), good + "x", good + "\n", std::string("$2x$") + good.substr(4),
        std::string("$2b$99$") + good.substr(7), std::string("$1$abc$") + good.substr(7),
        std::string("$argon2id$garbage"), std::string("$argon2id$v=19$m=256,t=2,p=1$c29tZXNhbHQ$"),
        std::string("$argon2$") + good}) {
    EXPECT_FALSE(fast_hasher().verify("secret", bad)) << bad;
  }
}

TEST(MalformedHash, PlainCryptSchemesNotAccepted) {
  // glibc-style crypt hashes are not accepted even though crypt_rn could check them:
  // sha512crypt of "secret" with salt "saltsalt" (python3 -c 'import crypt;
  // print(crypt.crypt("secret", "$6$saltsalt"))').
  EXPECT_FALSE(fast_hasher().verify(
      "secret",
      "$6$saltsalt$TVLlQcbpFVof5W3Yz4DTP6gRstiNuHwwTt6GLc1E5n0U0aDehy0S5knV8wiOQSpT0Y77vwPZN.Pq."
      "H91p5hVO1"));
}

TEST(DummyVerify, RunsWithAnyPassword) {
  PasswordHasher h(Argon2Params{1024, 1, 1});
  h.set_dummy_hash(kSecret2b);
  EXPECT_NO_THROW(h.dummy_verify("secret"));
  EXPECT_NO_THROW(h.dummy_verify(std::string(10000, 'z')));
  EXPECT_NO_THROW(h.dummy_verify(std::string("a\0b", 3)));
}

}  // namespace
