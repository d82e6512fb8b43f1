// Parameter constraints (ParamDoc's gt/ge/lt/le, min_length/max_length) and list query
// parameters (Query<std::vector<T>>), params.hpp. The expected answers and schemas are
// FastAPI 0.92's (pydantic 1.10) for the same declarations:
//
//   @app.get("/c/{n}")
//   def c(n: int = Path(..., gt=0, lt=1000), limit: int = Query(10, ge=1, le=100),
//         q: Optional[str] = Query(None, min_length=3, max_length=5),
//         r: float = Query(0.5, ge=0.0, lt=1.5), tag: List[int] = Query([]),
//         s: List[str] = Query(..., min_length=2),
//         x_count: Optional[float] = Header(None, gt=1)): ...
#include <gtest/gtest.h>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "gatehouse/app.hpp"
#include "gatehouse/params.hpp"
#include "test_support.hpp"

namespace {

namespace json = boost::json;
using gatehouse::App;
using gatehouse::Header;
using gatehouse::Path;
using gatehouse::Query;
using testing_support::Call;

void declare(App& app) {
  app.get(
      "/c/{n}", {.name = "c"},
      [](int n, int limit, const std::optional<std::string>& q, double r,
         const std::vector<int>& tag, const std::vector<std::string>& s,
         const std::optional<double>& x) {
        json::array tags(tag.begin(), tag.end());
        json::array ss(s.begin(), s.end());
        return json::value{{"n", n},
                           {"limit", limit},
                           {"q", q ? json::value(*q) : json::value(nullptr)},
                           {"r", r},
                           {"tag", tags},
                           {"s", ss},
                           {"x", x ? json::value(*x) : json::value(nullptr)}};
      },
      Path<int>("n", {.gt = 0, .lt = 1000}), Query<int>("limit", 10, {.ge = 1, .le = 100}),
      Query<std::optional<std::string>>("q", {.min_length = 3, .max_length = 5}),
      Query<double>("r", 0.5, {.ge = 0.0, .lt = 1.5}),
      Query<std::vector<int>>("tag", std::vector<int>{}),
      Query<std::vector<std::string>>("s", {.min_length = 2}),
      Header<std::optional<double>>("x_count", {.gt = 1}));
}

struct Answer {
  unsigned status;
  json::value body;
};

Answer get(std::string target, gatehouse::Headers headers = {}) {
  App app;
  declare(app);
  auto r = testing_support::handle(
      app, Call{.method = "GET", .target = std::move(target), .headers = std::move(headers)});
  return {r.status, json::parse(r.body)};
}

TEST(ParamConstraints, LowerBoundsAndMinLengthGivePydanticErrors) {
  auto a = get("/c/0?limit=0&q=ab&r=1.5&s=a");
  EXPECT_EQ(a.status, 422u);
  EXPECT_EQ(a.body, json::parse(R"({"detail":[
    {"loc":["path","n"],"msg":"ensure this value is greater than 0","type":"value_error.number.not_gt","ctx":{"limit_value":0}},
    {"loc":["query","limit"],"msg":"ensure this value is greater than or equal to 1","type":"value_error.number.not_ge","ctx":{"limit_value":1}},
    {"loc":["query","q"],"msg":"ensure this value has at least 3 characters","type":"value_error.any_str.min_length","ctx":{"limit_value":3}},
    {"loc":["query","r"],"msg":"ensure this value is less than 1.5","type":"value_error.number.not_lt","ctx":{"limit_value":1.5}},
    {"loc":["query","s",0],"msg":"ensure this value has at least 2 characters","type":"value_error.any_str.min_length","ctx":{"limit_value":2}}]})"));
}

TEST(ParamConstraints, UpperBoundsMaxLengthListItemsAndHeaders) {
  auto a = get("/c/1000?limit=101&q=abcdef&r=-1&tag=1&tag=x&s=abc", {{"X-Count", "0.5"}});
  EXPECT_EQ(a.status, 422u);
  EXPECT_EQ(a.body, json::parse(R"({"detail":[
    {"loc":["path","n"],"msg":"ensure this value is less than 1000","type":"value_error.number.not_lt","ctx":{"limit_value":1000}},
    {"loc":["query","limit"],"msg":"ensure this value is less than or equal to 100","type":"value_error.number.not_le","ctx":{"limit_value":100}},
    {"loc":["query","q"],"msg":"ensure this value has at most 5 characters","type":"value_error.any_str.max_length","ctx":{"limit_value":5}},
    {"loc":["query","r"],"msg":"ensure this value is greater than or equal to 0.0","type":"value_error.number.not_ge","ctx":{"limit_value":0.0}},
    {"loc":["query","tag",1],"msg":"value is not a valid integer","type":"type_error.integer"},
    {"loc":["header","x-count"],"msg":"ensure this value is greater than 1","type":"value_error.number.not_gt","ctx":{"limit_value":1}}]})"));
}

TEST(ParamConstraints, ListsCollectEveryValueInOrder) {
  auto a = get("/c/5?s=ab&s=cd&tag=2&tag=3&q=abc");
  EXPECT_EQ(a.status, 200u);
  EXPECT_EQ(
      a.body,
      json::parse(R"({"n":5,"limit":10,"q":"abc","r":0.5,"tag":[2,3],"s":["ab","cd"],"x":null})"));
  // The list's own bad item, and a required list that is absent.
  auto b = get("/c/5?s=aa&s=b&tag=2&tag=3");
  EXPECT_EQ(
      b.body,
      json::parse(
          R"({"detail":[{"loc":["query","s",1],"msg":"ensure this value has at least 2 characters","type":"value_error.any_str.min_length","ctx":{"limit_value":2}}]})"));
  auto c = get("/c/x?limit=1.5");
  EXPECT_EQ(c.body, json::parse(R"({"detail":[
    {"loc":["path","n"],"msg":"value is not a valid integer","type":"type_error.integer"},
    {"loc":["query","limit"],"msg":"value is not a valid integer","type":"type_error.integer"},
    {"loc":["query","s"],"msg":"field required","type":"value_error.missing"}]})"));
}

TEST(ParamConstraints, LengthsCountCharactersNotBytes) {
  // "é" is 2 bytes, 1 character: too short for min_length=3 with "éé" (2 characters).
  auto a = get("/c/5?s=ab&q=%C3%A9%C3%A9");
  ASSERT_EQ(a.status, 422u);
  EXPECT_EQ(a.body.at("detail").at(0).at("type"), json::value("value_error.any_str.min_length"));
  EXPECT_EQ(get("/c/5?s=ab&q=%C3%A9%C3%A9%C3%A9").status, 200u);
}

TEST(ParamConstraints, PublishedInTheSchemaAsFastApiDoes) {
  App app;
  declare(app);
  const auto doc = json::parse(json::serialize(app.openapi()));
  const auto& params = doc.at("paths").at("/c/{n}").at("get").at("parameters");
  EXPECT_EQ(params, json::parse(R"([
    {"required": true, "schema": {"title": "N", "exclusiveMaximum": 1000.0, "exclusiveMinimum": 0.0, "type": "integer"}, "name": "n", "in": "path"},
    {"required": false, "schema": {"title": "Limit", "maximum": 100.0, "minimum": 1.0, "type": "integer", "default": 10}, "name": "limit", "in": "query"},
    {"required": false, "schema": {"title": "Q", "maxLength": 5, "minLength": 3, "type": "string"}, "name": "q", "in": "query"},
    {"required": false, "schema": {"title": "R", "exclusiveMaximum": 1.5, "minimum": 0.0, "type": "number", "default": 0.5}, "name": "r", "in": "query"},
    {"required": false, "schema": {"title": "Tag", "type": "array", "items": {"type": "integer"}, "default": []}, "name": "tag", "in": "query"},
    {"required": true, "schema": {"title": "S", "minLength": 2, "type": "array", "items": {"minLength": 2, "type": "string"}}, "name": "s", "in": "query"},
    {"required": false, "schema": {"title": "X-Count", "exclusiveMinimum": 1.0, "type": "number"}, "name": "x-count", "in": "header"}])"));
  // Key order too, as FastAPI writes it.
  EXPECT_EQ(json::serialize(params.at(0).at("schema")),
            R"({"title":"N","exclusiveMaximum":1E3,"exclusiveMinimum":0E0,"type":"integer"})");
}

TEST(ParamConstraints, ConstraintsThatCannotApplyFailWhenDeclared) {
  App app;
  EXPECT_THROW(app.get(
                   "/a", {.name = "a"}, [](int) { return json::value(1); },
                   Query<int>("n", {.min_length = 2})),
               std::logic_error);
  EXPECT_THROW(app.get(
                   "/b", {.name = "b"}, [](const std::string&) { return json::value(1); },
                   Query<std::string>("s", {.ge = 1})),
               std::logic_error);
  EXPECT_THROW(app.get(
                   "/c/{v}", {.name = "c"}, [](const std::vector<int>&) { return json::value(1); },
                   Path<std::vector<int>>("v")),
               std::logic_error);
}

}  // namespace
