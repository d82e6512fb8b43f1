// PostgreSQL connection URLs without their passwords (src/store/postgres_url.cpp) and
// libpq's verdict on a URL (postgres_url_problem): what a log line, an error message or
// --config-check shows of a URL never holds the password, in any of its spellings.
#include <gtest/gtest.h>

#include <string>

#include "gatehouse/store.hpp"
#include "store/postgres_url.hpp"

namespace {

using gatehouse::pg::percent_decode;
using gatehouse::pg::Redactor;

TEST(PostgresUrl, UriPasswordIsRemovedAndTheRestKept) {
  EXPECT_EQ(Redactor("postgresql://app:s3cret@db.example:5432/gh?sslmode=require").safe_url(),
            "postgresql://app@db.example:5432/gh?sslmode=require");
  EXPECT_EQ(Redactor("postgres://app:s3cret@db/gh").safe_url(), "postgres://app@db/gh");
}

TEST(PostgresUrl, UriWithoutPasswordIsUnchanged) {
  for (const char* url : {"postgresql://app@db/gh", "postgresql:///gh?host=/run/postgresql",
                          "postgresql://db.example/gh?sslmode=verify-full&connect_timeout=5"}) {
    EXPECT_EQ(Redactor(url).safe_url(), url);
    EXPECT_EQ(gatehouse::redact_postgres_url(url), url);
  }
}

TEST(PostgresUrl, PasswordQueryParameterIsDropped) {
  EXPECT_EQ(Redactor("postgresql://app@db/gh?sslmode=require&password=s3cret&application_name=x")
                .safe_url(),
            "postgresql://app@db/gh?sslmode=require&application_name=x");
  // Its name percent-encoded is still the password parameter, as libpq decodes it.
  EXPECT_EQ(Redactor("postgresql://db/gh?pass%77ord=s3cret").safe_url(), "postgresql://db/gh");
  EXPECT_EQ(Redactor("postgresql://db/gh?password=s3cret").safe_url(), "postgresql://db/gh");
}

TEST(PostgresUrl, UserInfoEndsAtTheFirstAtBeforeASlash) {
  // As libpq: an '@' after the first '/' belongs to the path, not to the user info.
  EXPECT_EQ(Redactor("postgresql://db/gh@x").safe_url(), "postgresql://db/gh@x");
  EXPECT_EQ(Redactor("postgresql://u:p@ss@db/gh").safe_url(), "postgresql://u@ss@db/gh");
}

TEST(PostgresUrl, KeywordPasswordIsRemoved) {
  EXPECT_EQ(Redactor("host=db user=app password=s3cret dbname=gh").safe_url(),
            "host=db user=app dbname=gh");
  EXPECT_EQ(Redactor("host=db password = 'a b' dbname=gh").safe_url(), "host=db dbname=gh");
  EXPECT_EQ(Redactor("  host = db   dbname=gh ").safe_url(), "host=db dbname=gh");
}

TEST(PostgresUrl, ScrubReplacesEverySpellingOfThePassword) {
  const Redactor r("postgresql://app:p%40ss%2Fword@db/gh");
  EXPECT_EQ(r.safe_url(), "postgresql://app@db/gh");
  EXPECT_EQ(r.scrub("raw p%40ss%2Fword, decoded p@ss/word."), "raw ***, decoded ***.");
  EXPECT_EQ(r.scrub("nothing secret here"), "nothing secret here");
}

TEST(PostgresUrl, ScrubKeywordPasswordQuotedAndUnquoted) {
  const Redactor r("host=db password='a b\\'c'");
  EXPECT_EQ(r.scrub("got a b'c and 'a b\\'c'"), "got *** and ***");
}

TEST(PostgresUrl, SecretGivenApartIsScrubbed) {
  Redactor r("postgresql://app@db/gh");
  r.add_secret("from-a-file");
  r.add_secret("");  // an empty password scrubs nothing
  EXPECT_EQ(r.scrub("password from-a-file rejected"), "password *** rejected");
  EXPECT_EQ(r.scrub("abc"), "abc");
}

TEST(PostgresUrl, PercentDecodeKeepsInvalidEscapes) {
  EXPECT_EQ(percent_decode("a%20b%zz%4"), "a b%zz%4");
  EXPECT_EQ(percent_decode("%41%62"), "Ab");
}

TEST(PostgresUrl, LibpqJudgesTheUrlAndTheAnswerHidesThePassword) {
  EXPECT_EQ(gatehouse::postgres_url_problem("postgresql://app:s3cret@db/gh?sslmode=require"), "");
  EXPECT_EQ(gatehouse::postgres_url_problem("host=db dbname=gh"), "");
  const std::string bad = gatehouse::postgres_url_problem("postgresql://app:s3cret@db/gh?nosuch=1");
  EXPECT_NE(bad, "");
  EXPECT_NE(bad.find("nosuch"), std::string::npos) << bad;
  EXPECT_EQ(bad.find("s3cret"), std::string::npos) << bad;
}

}  // namespace
