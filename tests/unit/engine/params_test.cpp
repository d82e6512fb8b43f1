// Path templates, Path/Query/Header/Cookie parameters and JSON bodies (include/gatehouse/
// params.hpp, models.hpp, src/routing/app.cpp's router). The expected answers are FastAPI
// 0.92's (pydantic 1.10, Starlette 0.26) for the same declarations, taken from the
// reference stack with starlette.testclient.
#include <gtest/gtest.h>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "gatehouse/app.hpp"
#include "gatehouse/models.hpp"
#include "gatehouse/params.hpp"
#include "test_support.hpp"

namespace params_test {

struct NoteIn {
  std::string title;
  std::optional<std::string> body;
  std::optional<bool> pinned;
  std::optional<std::int64_t> priority;
};
GATEHOUSE_MODEL(NoteIn, title, body, pinned, priority)

struct Note {
  std::int64_t id = 0;
  std::string title;
  std::string body;
};
GATEHOUSE_MODEL(Note, id, title, body)

}  // namespace params_test

namespace {

namespace json = boost::json;
using gatehouse::App;
using gatehouse::Cookie;
using gatehouse::Header;
using gatehouse::JsonBody;
using gatehouse::Path;
using gatehouse::Query;
using params_test::Note;
using params_test::NoteIn;
using testing_support::Call;

gatehouse::Response get(const App& app, std::string target, gatehouse::Headers headers = {}) {
  return testing_support::handle(
      app, Call{.method = "GET", .target = std::move(target), .headers = std::move(headers)});
}
gatehouse::Response post(const App& app, std::string target, std::string body,
                         gatehouse::Headers headers = {}) {
  return testing_support::handle(app, Call{.method = "POST",
                                           .target = std::move(target),
                                           .headers = std::move(headers),
                                           .body = std::move(body)});
}

// FastAPI:
//   @app.get("/notes/{note_id}", response_model=Note)
//   def read_note(note_id: int, verbose: bool = False, limit: int = 10, q: Optional[str] = None,
//                 user_agent: Optional[str] = Header(None), session: Optional[str] = Cookie(None))
//   @app.get("/req")
//   def req(x: float, tag: str = Query(...), x_token: str = Header(...))
//   @app.post("/notes/")
//   def create(note: NoteIn)
class ParamsApp : public ::testing::Test {
 protected:
  void SetUp() override {
    app.get(
        "/notes/{note_id}", {.name = "read_note", .response_model = gatehouse::model_of<Note>()},
        [](std::int64_t note_id, bool verbose, int limit, const std::optional<std::string>& q,
           const std::optional<std::string>& ua, const std::optional<std::string>& session) {
          // More than the model has: the response_model keeps id, title and body only.
          return json::value{{"id", note_id},
                             {"title", "t"},
                             {"body", "b"},
                             {"secret", 1},
                             {"verbose", verbose},
                             {"limit", limit},
                             {"q", q ? json::value(*q) : nullptr},
                             {"ua", ua ? json::value(*ua) : nullptr},
                             {"session", session ? json::value(*session) : nullptr}};
        },
        Path<std::int64_t>("note_id"), Query<bool>("verbose", false), Query<int>("limit", 10),
        Query<std::optional<std::string>>("q"), Header<std::optional<std::string>>("user_agent"),
        Cookie<std::optional<std::string>>("session"));
    app.get(
        "/req", {.name = "req"},
        [](double x, const std::string& tag, const std::string& token) {
          return json::value{{"x", x}, {"tag", tag}, {"token", token}};
        },
        Query<double>("x"), Query<std::string>("tag"), Header<std::string>("x_token"));
    app.post(
        "/notes/", {.name = "create"}, [](const NoteIn& note) { return note; }, JsonBody<NoteIn>());
    app.get(
        "/files/{rest:path}", {.name = "files"},
        [](const std::string& rest) {
          return json::value{{"rest", rest}};
        },
        Path<std::string>("rest"));
    app.get(
        "/i/{n:int}", {.name = "ints"},
        [](std::int64_t n) {
          return json::value{{"n", n}};
        },
        Path<std::int64_t>("n"));
    app.get(
        "/two/{a}-{b}", {.name = "two"},
        [](const std::string& a, const std::string& b) {
          return json::value{{"a", a}, {"b", b}};
        },
        Path<std::string>("a"), Path<std::string>("b"));
    // Declared cookie first, header, then query: FastAPI reports (and documents)
    // query, header, cookie.
    app.get(
        "/c", {.name = "c"},
        [](const std::string& session, const std::optional<std::string>& theme,
           const std::optional<std::string>& x_token, std::int32_t n, double f) {
          return json::value{{"session", session},
                             {"theme", theme ? json::value(*theme) : nullptr},
                             {"x_token", x_token ? json::value(*x_token) : nullptr},
                             {"n", n},
                             {"f", f}};
        },
        Cookie<std::string>("session"), Cookie<std::optional<std::string>>("theme"),
        Header<std::optional<std::string>>("x_token"), Query<std::int32_t>("n", 0),
        Query<double>("f", 0.5));
  }
  App app;
};

TEST_F(ParamsApp, PathQueryAndResponseModelFilter) {
  auto r = get(app, "/notes/12");
  EXPECT_EQ(r.status, 200u);
  EXPECT_EQ(r.body, R"({"id":12,"title":"t","body":"b"})");
}

TEST_F(ParamsApp, ErrorsOfEveryParameterInOneAnswer) {
  auto r = get(app, "/notes/abc?verbose=maybe&limit=x");
  EXPECT_EQ(r.status, 422u);
  EXPECT_EQ(
      r.body,
      R"({"detail":[{"loc":["path","note_id"],"msg":"value is not a valid integer","type":"type_error.integer"},{"loc":["query","verbose"],"msg":"value could not be parsed to a boolean","type":"type_error.bool"},{"loc":["query","limit"],"msg":"value is not a valid integer","type":"type_error.integer"}]})");
}

TEST_F(ParamsApp, PythonIntAndBoolSpellings) {
  auto r = get(app, "/notes/1?verbose=YES&limit=+1_0&q=&q=z");
  EXPECT_EQ(r.status, 200u) << r.body;
  // Query values reach the handler (checked through a route without a response model).
  App plain;
  plain.get(
      "/n", {.name = "n"},
      [](int limit, bool verbose, const std::optional<std::string>& q) {
        return json::value{{"limit", limit}, {"verbose", verbose}, {"q", q ? *q : "-"}};
      },
      Query<int>("limit", 10), Query<bool>("verbose", false),
      Query<std::optional<std::string>>("q"));
  EXPECT_EQ(get(plain, "/n?limit=%2B1_0&verbose=YES&q=&q=z").body,
            R"({"limit":10,"verbose":true,"q":"z"})");
  EXPECT_EQ(get(plain, "/n?limit=%2007%20&verbose=off&q=a+b%C3%A9").body,
            R"({"limit":7,"verbose":false,"q":"a bé"})");
  EXPECT_EQ(get(plain, "/n?limit=1__0").status, 422u);
  EXPECT_EQ(get(plain, "/n?limit=_1").status, 422u);
  EXPECT_EQ(get(plain, "/n?limit=1.5").status, 422u);
  EXPECT_EQ(get(plain, "/n?limit=").status, 422u);
  EXPECT_EQ(get(plain, "/n?q").body, R"({"limit":10,"verbose":false,"q":""})");
}

TEST_F(ParamsApp, MissingRequiredQueryAndHeader) {
  auto r = get(app, "/req");
  EXPECT_EQ(r.status, 422u);
  EXPECT_EQ(
      r.body,
      R"({"detail":[{"loc":["query","x"],"msg":"field required","type":"value_error.missing"},{"loc":["query","tag"],"msg":"field required","type":"value_error.missing"},{"loc":["header","x-token"],"msg":"field required","type":"value_error.missing"}]})");
  r = get(app, "/req?x=nan&tag=");
  EXPECT_EQ(
      r.body,
      R"({"detail":[{"loc":["header","x-token"],"msg":"field required","type":"value_error.missing"}]})");
  r = get(app, "/req?x=1e3&tag=a", {{"X-Token", "t"}});
  EXPECT_EQ(r.status, 200u);
  EXPECT_EQ(json::parse(r.body), json::parse(R"({"x":1000.0,"tag":"a","token":"t"})"));
  EXPECT_EQ(get(app, "/req?x=0x10&tag=a", {{"X-Token", "t"}}).status, 422u);
  EXPECT_EQ(get(app, "/req?x=.5&tag=a", {{"X-Token", "t"}}).status, 200u);
  EXPECT_EQ(get(app, "/req?x=1.&tag=a", {{"X-Token", "t"}}).status, 200u);
  EXPECT_EQ(get(app, "/req?x=.&tag=a", {{"X-Token", "t"}}).status, 422u);
}

TEST_F(ParamsApp, CookiesHeadersAndRangeErrorsInFastApiOrder) {
  auto r = get(app, "/c");
  EXPECT_EQ(
      r.body,
      R"({"detail":[{"loc":["cookie","session"],"msg":"field required","type":"value_error.missing"}]})");
  r = get(app, "/c",
          {{"Cookie", R"(session="a\"b\054c"; theme=dark; theme=light)"}, {"X-Token", "t"}});
  EXPECT_EQ(r.status, 200u);
  EXPECT_EQ(json::parse(r.body),
            json::parse(R"({"session":"a\"b,c","theme":"light","x_token":"t","n":0,"f":0.5})"));
  r = get(app, "/c?n=99999999999&f=1_0.5", {{"Cookie", "session=1"}});
  EXPECT_EQ(
      r.body,
      R"({"detail":[{"loc":["query","n"],"msg":"ensure this value is less than or equal to 2147483647","type":"value_error.number.not_le","ctx":{"limit_value":2147483647}}]})");
  r = get(app, "/c?n=-99999999999&f=.5e1", {{"Cookie", "session=1"}});
  EXPECT_EQ(
      r.body,
      R"({"detail":[{"loc":["query","n"],"msg":"ensure this value is greater than or equal to -2147483648","type":"value_error.number.not_ge","ctx":{"limit_value":-2147483648}}]})");
  r = get(app, "/c?n=%2B7&f=x", {{"Cookie", "session=1; =x; y"}});
  EXPECT_EQ(
      r.body,
      R"({"detail":[{"loc":["query","f"],"msg":"value is not a valid float","type":"type_error.float"}]})");
  // Errors of several kinds: query before cookie, whatever the declaration order.
  r = get(app, "/c?n=x");
  EXPECT_EQ(
      r.body,
      R"({"detail":[{"loc":["query","n"],"msg":"value is not a valid integer","type":"type_error.integer"},{"loc":["cookie","session"],"msg":"field required","type":"value_error.missing"}]})");
}

TEST_F(ParamsApp, RouterAnswersAsStarlette) {
  EXPECT_EQ(get(app, "/files/a/b/c.txt").body, R"({"rest":"a/b/c.txt"})");
  EXPECT_EQ(get(app, "/files/").body, R"({"rest":""})");
  EXPECT_EQ(get(app, "/i/12").body, R"({"n":12})");
  EXPECT_EQ(get(app, "/i/x").status, 404u);
  EXPECT_EQ(get(app, "/two/a-b-c").body, R"({"a":"a-b","b":"c"})");
  EXPECT_EQ(get(app, "/notes/1/2").status, 404u);
  auto r = get(app, "/notes/12/", {{"Host", "testserver"}});
  EXPECT_EQ(r.status, 307u);
  EXPECT_EQ(testing_support::header_of(r, "Location"), "http://testserver/notes/12");
  r = get(app, "/notes", {{"Host", "testserver"}});
  EXPECT_EQ(r.status, 307u);
  EXPECT_EQ(testing_support::header_of(r, "Location"), "http://testserver/notes/");
  r = post(app, "/notes/12", "");
  EXPECT_EQ(r.status, 405u);
  EXPECT_EQ(testing_support::header_of(r, "Allow"), "GET");
}

TEST_F(ParamsApp, JsonBodyDecodesAsPydantic) {
  const gatehouse::Headers json_ct{{"Content-Type", "application/json"}};
  auto r = post(app, "/notes/", "");
  EXPECT_EQ(r.body,
            R"({"detail":[{"loc":["body"],"msg":"field required","type":"value_error.missing"}]})");
  EXPECT_EQ(post(app, "/notes/", "null", json_ct).body, r.body);
  r = post(app, "/notes/", "[]", json_ct);
  EXPECT_EQ(
      r.body,
      R"({"detail":[{"loc":["body","title"],"msg":"field required","type":"value_error.missing"}]})");
  r = post(app, "/notes/", R"({"title": 5, "pinned": "yes", "priority": 2.7})", json_ct);
  EXPECT_EQ(r.status, 200u);
  EXPECT_EQ(r.body, R"({"title":"5","body":null,"pinned":true,"priority":2})");
  r = post(app, "/notes/", R"({"pinned": "x", "priority": "a"})", json_ct);
  EXPECT_EQ(
      r.body,
      R"({"detail":[{"loc":["body","title"],"msg":"field required","type":"value_error.missing"},{"loc":["body","pinned"],"msg":"value could not be parsed to a boolean","type":"type_error.bool"},{"loc":["body","priority"],"msg":"value is not a valid integer","type":"type_error.integer"}]})");
  r = post(app, "/notes/", R"({"title":"a"})", {{"Content-Type", "text/plain"}});
  EXPECT_EQ(
      r.body,
      R"({"detail":[{"loc":["body"],"msg":"value is not a valid dict","type":"type_error.dict"}]})");
  // No Content-Type: read as JSON; application/*+json too.
  EXPECT_EQ(post(app, "/notes/", R"({"title":"a"})").status, 200u);
  EXPECT_EQ(
      post(app, "/notes/", R"({"title":"a"})", {{"Content-Type", "application/x+json"}}).status,
      200u);
  r = post(app, "/notes/", R"({"title": null, "body": 1.5, "pinned": 1})", json_ct);
  EXPECT_EQ(
      r.body,
      R"({"detail":[{"loc":["body","title"],"msg":"none is not an allowed value","type":"type_error.none.not_allowed"}]})");
  r = post(app, "/notes/", R"({"title": true, "body": 1e20})", json_ct);
  EXPECT_EQ(r.body, R"({"title":"True","body":"1e+20","pinned":null,"priority":null})");
  r = post(app, "/notes/", R"({"title": {}, "priority": 9.9e99})", json_ct);
  EXPECT_EQ(r.status, 422u);
  EXPECT_EQ(json::parse(r.body).at("detail").as_array().size(), 2u);
}

TEST_F(ParamsApp, InvalidJsonIsA422AtItsPosition) {
  auto r = post(app, "/notes/", "{", {{"Content-Type", "application/json"}});
  EXPECT_EQ(r.status, 422u);
  auto detail = json::parse(r.body).at("detail").at(0);
  EXPECT_EQ(detail.at("loc"), json::parse(R"(["body",1])"));
  EXPECT_EQ(detail.at("type"), "value_error.jsondecode");
  // Not UTF-8 at all: FastAPI's 400.
  r = post(app, "/notes/", "{\"title\":\"\xff\"}", {{"Content-Type", "application/json"}});
  EXPECT_EQ(r.status, 400u);
  EXPECT_EQ(r.body, R"({"detail":"There was an error parsing the body"})");
}

TEST_F(ParamsApp, OpenApiParametersAndBodies) {
  auto doc = app.openapi();
  const auto& paths = doc.at("paths").as_object();
  EXPECT_EQ(
      json::serialize(paths.at("/notes/{note_id}")),
      R"({"get":{"summary":"Read Note","operationId":"read_note_notes__note_id__get","parameters":[{"required":true,"schema":{"title":"Note Id","type":"integer"},"name":"note_id","in":"path"},{"required":false,"schema":{"title":"Verbose","type":"boolean","default":false},"name":"verbose","in":"query"},{"required":false,"schema":{"title":"Limit","type":"integer","default":10},"name":"limit","in":"query"},{"required":false,"schema":{"title":"Q","type":"string"},"name":"q","in":"query"},{"required":false,"schema":{"title":"User-Agent","type":"string"},"name":"user-agent","in":"header"},{"required":false,"schema":{"title":"Session","type":"string"},"name":"session","in":"cookie"}],"responses":{"200":{"description":"Successful Response","content":{"application/json":{"schema":{"$ref":"#/components/schemas/Note"}}}},"422":{"description":"Validation Error","content":{"application/json":{"schema":{"$ref":"#/components/schemas/HTTPValidationError"}}}}}}})");
  EXPECT_EQ(
      json::serialize(paths.at("/notes/")),
      R"({"post":{"summary":"Create","operationId":"create_notes__post","requestBody":{"content":{"application/json":{"schema":{"$ref":"#/components/schemas/NoteIn"}}},"required":true},"responses":{"200":{"description":"Successful Response","content":{"application/json":{"schema":{}}}},"422":{"description":"Validation Error","content":{"application/json":{"schema":{"$ref":"#/components/schemas/HTTPValidationError"}}}}}}})");
  EXPECT_TRUE(paths.contains("/files/{rest}"));
  EXPECT_EQ(paths.at("/files/{rest}").at("get").at("operationId"), "files_files__rest__get");
  EXPECT_EQ(
      json::serialize(paths.at("/c").at("get").at("parameters").at(2)),
      R"({"required":false,"schema":{"title":"X-Token","type":"string"},"name":"x-token","in":"header"})");
  const auto& schemas = doc.at("components").at("schemas");
  EXPECT_EQ(
      json::serialize(schemas.at("Note")),
      R"({"title":"Note","required":["id","title","body"],"type":"object","properties":{"id":{"title":"Id","type":"integer"},"title":{"title":"Title","type":"string"},"body":{"title":"Body","type":"string"}}})");
  EXPECT_TRUE(schemas.as_object().contains("HTTPValidationError"));
}

TEST(ParamsDeclaration, MistakesFailWhenTheRouteIsDeclared) {
  App app;
  auto h = [](const std::string&) { return json::value{}; };
  EXPECT_THROW(app.get("/a/{id}", {.name = "a"}, h, Path<std::string>("other")), std::logic_error);
  EXPECT_THROW(app.get("/b/{id:uuid4}", {.name = "b"}, h, Path<std::string>("id")),
               std::logic_error);
  EXPECT_THROW(app.get("/c/{id}/{id}", {.name = "c"}, h, Path<std::string>("id")),
               std::logic_error);
  EXPECT_THROW(app.post(
                   "/d", {.name = "d"}, [](const NoteIn&, const NoteIn&) { return json::value{}; },
                   JsonBody<NoteIn>(), JsonBody<NoteIn>()),
               std::logic_error);
}

TEST(ParamsDeclaration, PasswordFormRoutesRunOffloaded) {
  App app;
  auto& route = app.post(
      "/token", {.name = "login"},
      [](const gatehouse::OAuth2PasswordRequestForm&) { return json::value{}; },
      gatehouse::Depends(gatehouse::OAuth2PasswordRequestForm::dependency()));
  EXPECT_TRUE(route.options.offload);
  auto& plain = app.get("/x", {.name = "x"}, [] { return json::value{}; });
  EXPECT_FALSE(plain.options.offload);
}

TEST(Models, RoundTripAndErrors) {
  Note n{7, "t", "b"};
  EXPECT_EQ(json::serialize(gatehouse::to_json(n)), R"({"id":7,"title":"t","body":"b"})");
  auto back = gatehouse::from_json<Note>(json::parse(R"({"id":"7","title":"t","body":"b"})"));
  ASSERT_TRUE(back);
  EXPECT_EQ(back->id, 7);
  auto bad = gatehouse::from_json<Note>(json::parse(R"({"id":[1]})"));
  ASSERT_FALSE(bad);
  EXPECT_EQ(
      json::serialize(bad.error()),
      R"([{"loc":["id"],"msg":"value is not a valid integer","type":"type_error.integer"},{"loc":["title"],"msg":"field required","type":"value_error.missing"},{"loc":["body"],"msg":"field required","type":"value_error.missing"}])");
  auto list = gatehouse::from_json<std::vector<std::int64_t>>(json::parse(R"([1,"x"])"));
  ASSERT_FALSE(list);
  EXPECT_EQ(json::serialize(list.error()),
            R"([{"loc":[1],"msg":"value is not a valid integer","type":"type_error.integer"}])");
}

TEST(Models, ResponseModelThatDoesNotValidateIsA500) {
  App app;
  app.get("/bad", {.name = "bad", .response_model = gatehouse::model_of<Note>()}, [] {
    return json::value{{"id", "x"}};
  });
  auto r = get(app, "/bad");
  EXPECT_EQ(r.status, 500u);
}

TEST(QueryAndCookies, ParsedAsStarlette) {
  auto q = gatehouse::parse_query_string("a=1&&b&c=%zz&d=x%2By+z&a=2;e=3");
  ASSERT_EQ(q.size(), 5u);
  EXPECT_EQ(q[1], (std::pair<std::string, std::string>{"b", ""}));
  EXPECT_EQ(q[2].second, "%zz");
  EXPECT_EQ(q[3].second, "x+y z");
  EXPECT_EQ(q[4].second, "2;e=3");
  EXPECT_EQ(*gatehouse::find_param(q, "a"), "2;e=3");
  auto c = gatehouse::parse_cookies(R"( a = 1 ; b="x\"y" ;junk; a=2)");
  ASSERT_EQ(c.size(), 3u);
  EXPECT_EQ(*gatehouse::find_param(c, "a"), "2");
  EXPECT_EQ(*gatehouse::find_param(c, "b"), "x\"y");
  EXPECT_EQ(*gatehouse::find_param(c, ""), "junk");
}

}  // namespace
