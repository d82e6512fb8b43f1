// A handler that returns exactly its route's response_model type is answered with the
// model's JSON without the filter's round trip (Model::unfiltered_type), and the
// answer is byte for byte the filtered one; every other answer still goes through
// the filter.
#include <gtest/gtest.h>

#include <boost/json/serialize.hpp>

#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <vector>

#include "gatehouse/app.hpp"
#include "gatehouse/models.hpp"
#include "test_support.hpp"

namespace response_model_test {

struct Profile {
  std::string username;
  std::optional<std::string> email;
  std::optional<bool> disabled;
  std::int64_t visits = 0;
  std::uint64_t bytes = 0;
  std::vector<std::string> scopes;
  std::optional<std::vector<std::int64_t>> ids;
};
GATEHOUSE_MODEL(Profile, username, email, disabled, visits, bytes, scopes, ids)

// A float reads back differently when it is not finite: not eligible.
struct Measure {
  std::string name;
  double value = 0;
};
GATEHOUSE_MODEL(Measure, name, value)

struct Public {
  std::string username;
  std::optional<std::string> email;
  std::optional<bool> disabled;
};
GATEHOUSE_MODEL(Public, username, email, disabled)

// More than Public: what the filter drops.
struct StoredProfile {
  std::string username;
  std::optional<std::string> email;
  std::string hashed_password;
};
GATEHOUSE_MODEL(StoredProfile, username, email, hashed_password)

}  // namespace response_model_test

namespace {

namespace json = boost::json;
using gatehouse::App;
using response_model_test::Measure;
using response_model_test::Profile;
using response_model_test::Public;
using response_model_test::StoredProfile;
using testing_support::Call;

gatehouse::Response get(const App& app, std::string target) {
  return testing_support::handle(app, Call{.method = "GET", .target = std::move(target)});
}

Profile sample() {
  return Profile{"j\xc3\xb6hn \"d\"\n\x01",
                 std::nullopt,
                 true,
                 std::numeric_limits<std::int64_t>::min(),
                 std::numeric_limits<std::uint64_t>::max(),
                 {"me", "", "items"},
                 std::vector<std::int64_t>{-1, 0, 7}};
}

TEST(ResponseModelFastPath, OnlyModelsWhoseFieldsReadBackUnchanged) {
  EXPECT_EQ(gatehouse::model_of<Profile>().unfiltered_type, &typeid(Profile));
  EXPECT_EQ(gatehouse::model_of<StoredProfile>().unfiltered_type, &typeid(StoredProfile));
  EXPECT_EQ(gatehouse::model_of<Measure>().unfiltered_type, nullptr);
}

TEST(ResponseModelFastPath, SameBytesAsTheFilteredAnswer) {
  const auto model = gatehouse::model_of<Profile>();
  const auto filtered = model.filter(gatehouse::to_json(sample()));
  ASSERT_TRUE(filtered.has_value());
  App app;
  app.get("/p", {.name = "p", .response_model = model}, [] { return sample(); });
  auto r = get(app, "/p");
  EXPECT_EQ(r.status, 200u);
  EXPECT_EQ(r.body, gatehouse::Response::json(200, *filtered).body);
  EXPECT_EQ(r.content_type, "application/json");
}

TEST(ResponseModelFastPath, AnotherTypeIsStillFiltered) {
  App app;
  app.get("/p", {.name = "p", .response_model = gatehouse::model_of<Public>()}, [] {
    return StoredProfile{"johndoe", "j@example.com", "$2b$12$secret"};
  });
  auto r = get(app, "/p");
  // Filtered into Public: hashed_password is gone, the missing optional is null.
  EXPECT_EQ(r.status, 200u);
  EXPECT_EQ(r.body, R"({"username":"johndoe","email":"j@example.com","disabled":null})");
}

TEST(ResponseModelFastPath, AModelWithAFloatAnswersAsItsFilter) {
  const auto model = gatehouse::model_of<Measure>();
  App app;
  app.get("/m", {.name = "m", .response_model = model}, [] { return Measure{"x", 1.5}; });
  const auto filtered = model.filter(gatehouse::to_json(Measure{"x", 1.5}));
  ASSERT_TRUE(filtered.has_value());
  EXPECT_EQ(get(app, "/m").body, gatehouse::Response::json(200, *filtered).body);
}

}  // namespace
