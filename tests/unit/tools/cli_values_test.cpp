// The values the command reads from its settings and shows (tools/cli_values.cpp).
#include <gtest/gtest.h>

#include <chrono>
#include <string>

#include "cli_values.hpp"

namespace {

using gatehouse::cli::ExitError;
using gatehouse::cli::kExitUsage;
using gatehouse::cli::Setting;

Setting setting(std::string key, std::string value) {
  Setting s;
  s.key = std::move(key);
  s.value = std::move(value);
  s.origin = "flag --" + s.key;
  return s;
}

// The message of the usage error `fn` throws ("" when it throws none).
template <class F>
std::string usage_error(F fn) {
  try {
    fn();
  } catch (const ExitError& e) {
    EXPECT_EQ(e.code, kExitUsage);
    return e.what();
  }
  return "";
}

TEST(CliValues, AlgorithmNamesInAnyCase) {
  EXPECT_EQ(gatehouse::cli::parse_alg(setting("signing-alg", "HS256")), gatehouse::Alg::HS256);
  EXPECT_EQ(gatehouse::cli::parse_alg(setting("signing-alg", "rs256")), gatehouse::Alg::RS256);
  EXPECT_EQ(gatehouse::cli::parse_alg(setting("signing-alg", "Es256")), gatehouse::Alg::ES256);
  EXPECT_EQ(gatehouse::cli::parse_alg(setting("signing-alg", "eddsa")), gatehouse::Alg::EdDSA);
}

TEST(CliValues, UnknownAlgorithmIsAUsageErrorNamingTheSetting) {
  for (const char* bad : {"", "HS512", "none", "HS256 "}) {
    const auto msg =
        usage_error([&] { (void)gatehouse::cli::parse_alg(setting("signing-alg", bad)); });
    EXPECT_NE(msg.find("signing-alg"), std::string::npos) << msg;
    EXPECT_NE(msg.find("must be HS256, RS256, ES256 or EdDSA"), std::string::npos) << msg;
  }
}

TEST(CliValues, IssuerIsAnHttpUrlWithoutQueryOrFragment) {
  EXPECT_EQ(gatehouse::cli::parse_issuer(setting("issuer", "")), std::nullopt);
  EXPECT_EQ(gatehouse::cli::parse_issuer(setting("issuer", "https://auth.example")),
            "https://auth.example");
  EXPECT_EQ(gatehouse::cli::parse_issuer(setting("issuer", "http://127.0.0.1:8000/x")),
            "http://127.0.0.1:8000/x");
  for (const char* bad :
       {"auth.example", "ftp://auth.example", "https://a.example/?x=1", "https://a.example/#f"}) {
    const auto msg =
        usage_error([&] { (void)gatehouse::cli::parse_issuer(setting("issuer", bad)); });
    EXPECT_NE(msg.find("must be an https:// URL without query or fragment"), std::string::npos)
        << bad << ": " << msg;
  }
}

TEST(CliValues, UtcTime) {
  EXPECT_EQ(gatehouse::cli::utc_time(0), "1970-01-01T00:00:00Z");
  EXPECT_EQ(gatehouse::cli::utc_time(1798761599), "2026-12-31T23:59:59Z");
}

TEST(CliValues, PostgresUrlsByScheme) {
  EXPECT_TRUE(gatehouse::cli::is_postgres_url("postgresql://db/gh"));
  EXPECT_TRUE(gatehouse::cli::is_postgres_url("postgres://db/gh"));
  EXPECT_FALSE(gatehouse::cli::is_postgres_url("gatehouse.db"));
  EXPECT_FALSE(gatehouse::cli::is_postgres_url("host=db dbname=gh"));
  EXPECT_FALSE(gatehouse::cli::is_postgres_url("/data/postgresql://x"));
}

TEST(CliValues, DescribeThrottle) {
  gatehouse::ThrottleOptions o;
  EXPECT_EQ(gatehouse::cli::describe_throttle(o), "user 10/3600s, client 100/60s, blocks 1-900s");
  o.client.failures = 7;
  o.base_delay = std::chrono::milliseconds(2500);
  EXPECT_EQ(gatehouse::cli::describe_throttle(o), "user 10/3600s, client 7/60s, blocks 2-900s");
  o.enabled = false;
  EXPECT_EQ(gatehouse::cli::describe_throttle(o), "off");
}

}  // namespace
