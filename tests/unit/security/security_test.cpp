// Bearer extraction, scopes and the dependency system (src/engine/dependency.cpp,
// src/security/scopes.cpp, src/security/oauth2_*.cpp) and routing (src/routing/app.cpp),
// driven through App::handle with requests built in memory. FastAPI 0.92 / Starlette
// 0.26.1 semantics.
#include "gatehouse/security.hpp"

#include <gtest/gtest.h>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "gatehouse/app.hpp"
#include "test_support.hpp"

namespace {

namespace json = boost::json;
using gatehouse::App;
using gatehouse::Depends;
using gatehouse::Err;
using gatehouse::HttpException;
using gatehouse::OAuth2PasswordBearer;
using gatehouse::OAuth2PasswordRequestForm;
using gatehouse::Outcome;
using gatehouse::Security;
using gatehouse::SecurityScopes;
using testing_support::Call;
using testing_support::handle;
using testing_support::header_of;
using Strings = std::vector<std::string>;

constexpr std::string_view kMissingBoth =
    R"({"detail":[{"loc":["body","username"],"msg":"field required","type":"value_error.missing"},)"
    R"({"loc":["body","password"],"msg":"field required","type":"value_error.missing"}]})";
constexpr std::string_view kBadGrantError =
    R"({"loc":["body","grant_type"],"msg":"string does not match regex \"password\"",)"
    R"("type":"value_error.str.regex","ctx":{"pattern":"password"}})";

json::value error_at(std::string_view where, std::string_view field) {
  return json::object{{"loc", json::array{where, field}},
                      {"msg", "field required"},
                      {"type", "value_error.missing"}};
}

Outcome<int> validation_failure(std::string_view field) {
  json::array errors;
  errors.push_back(error_at("query", field));
  return Err{HttpException::validation_error(std::move(errors))};
}

OAuth2PasswordBearer make_bearer(bool auto_error = true) {
  return OAuth2PasswordBearer(
      {.token_url = "token",
       .scopes = {{"me", "Read information about the current user."}, {"items", "Read items."}},
       .auto_error = auto_error});
}

// ---- OAuth2PasswordBearer::extract --------------------------------------------------

TEST(BearerExtract, NoHeaderGivesNothing) {
  EXPECT_EQ(OAuth2PasswordBearer::extract(std::nullopt), std::nullopt);
}

TEST(BearerExtract, EmptyHeaderGivesNothing) {
  EXPECT_EQ(OAuth2PasswordBearer::extract(""), std::nullopt);
}

TEST(BearerExtract, BearerAloneGivesEmptyToken) {
  auto t = OAuth2PasswordBearer::extract("Bearer");
  ASSERT_TRUE(t.has_value());
  EXPECT_EQ(*t, "");
}

TEST(BearerExtract, SchemeAnyCase) {
  EXPECT_EQ(OAuth2PasswordBearer::extract("bearer x"), "x");
  EXPECT_EQ(OAuth2PasswordBearer::extract("BEARER x"), "x");
  EXPECT_EQ(OAuth2PasswordBearer::extract("BeArEr x"), "x");
}

TEST(BearerExtract, OtherSchemeGivesNothing) {
  EXPECT_EQ(OAuth2PasswordBearer::extract("Basic x"), std::nullopt);
  EXPECT_EQ(OAuth2PasswordBearer::extract("Token x"), std::nullopt);
  EXPECT_EQ(OAuth2PasswordBearer::extract("Bearerx"), std::nullopt);
}

TEST(BearerExtract, SplitAtFirstSpaceOnly) {
  EXPECT_EQ(OAuth2PasswordBearer::extract("Bearer  x"), " x");
  EXPECT_EQ(OAuth2PasswordBearer::extract("Bearer x y"), "x y");
}

TEST(BearerExtract, TabIsNotASeparator) {
  EXPECT_EQ(OAuth2PasswordBearer::extract("Bearer\tx"), std::nullopt);
}

// ---- split_scopes (Python's str.split()) --------------------------------------------------

TEST(SplitScopes, Spaces) {
  EXPECT_EQ(gatehouse::split_scopes("me items"), (Strings{"me", "items"}));
}

TEST(SplitScopes, AsciiWhitespaceRuns) {
  EXPECT_EQ(gatehouse::split_scopes(" me\t\titems\nx\r\fy\vz\x1c"
                                    "w "),
            (Strings{"me", "items", "x", "y", "z", "w"}));
}

TEST(SplitScopes, NoBreakSpaceSeparates) {
  EXPECT_EQ(gatehouse::split_scopes("me\xc2\xa0items"), (Strings{"me", "items"}));
}

TEST(SplitScopes, IdeographicSpaceSeparates) {
  EXPECT_EQ(gatehouse::split_scopes("me\xe3\x80\x80items"), (Strings{"me", "items"}));
}

TEST(SplitScopes, OtherUnicodeSpacesSeparate) {
  // U+0085, U+2003, U+2028, U+202F
  EXPECT_EQ(gatehouse::split_scopes("a\xc2\x85"
                                    "b\xe2\x80\x83"
                                    "c\xe2\x80\xa8"
                                    "d\xe2\x80\xaf"
                                    "e"),
            (Strings{"a", "b", "c", "d", "e"}));
}

TEST(SplitScopes, NonSpacesKept) {
  // U+200B ZERO WIDTH SPACE is not whitespace for Python; é is a letter
  EXPECT_EQ(gatehouse::split_scopes("a\xe2\x80\x8b"
                                    "b caf\xc3\xa9"),
            (Strings{"a\xe2\x80\x8b"
                     "b",
                     "caf\xc3\xa9"}));
}

TEST(SplitScopes, EmptyPartsDropped) {
  EXPECT_TRUE(gatehouse::split_scopes("").empty());
  EXPECT_TRUE(gatehouse::split_scopes("   \t ").empty());
}

TEST(SplitScopes, OrderAndDuplicatesKept) {
  EXPECT_EQ(gatehouse::split_scopes("b a b"), (Strings{"b", "a", "b"}));
}

// ---- SecurityScopes ------------------------------------------------------------------------

TEST(SecurityScopesTest, DefaultIsEmpty) {
  SecurityScopes s;
  EXPECT_TRUE(s.empty());
  EXPECT_EQ(s.scope_str(), "");
}

TEST(SecurityScopesTest, ScopeStrJoinsWithSpaces) {
  SecurityScopes s({"items", "me"});
  EXPECT_FALSE(s.empty());
  EXPECT_EQ(s.scope_str(), "items me");
}

TEST(SecurityScopesTest, PlusAppendsAfterOuterScopes) {
  auto s = SecurityScopes({"items"}).plus({"me", "x"});
  EXPECT_EQ(s.scopes(), (Strings{"items", "me", "x"}));
  EXPECT_EQ(s.scope_str(), "items me x");
  EXPECT_EQ(SecurityScopes({"a"}).plus({}).scopes(), (Strings{"a"}));
  EXPECT_EQ(SecurityScopes().plus({"b"}).scope_str(), "b");
}

// ---- the dependency tree -------------------------------------------------------------------

TEST(Dependencies, ScopesAccumulateOuterFirst) {
  App app;
  auto seen = std::make_shared<Strings>();
  auto inner = gatehouse::dependency<int>([seen](const SecurityScopes& s) {
    *seen = s.scopes();
    return 1;
  });
  auto middle =
      gatehouse::dependency<int>([](const int& v) { return v + 1; }, Security(inner, {"me"}));
  app.get(
      "/x", {.name = "x"}, [](const int& v) { return json::value(v); },
      Security(middle, {"items"}));
  auto r = handle(app, {.target = "/x"});
  EXPECT_EQ(r.status, 200u);
  EXPECT_EQ(r.body, "2");
  EXPECT_EQ(*seen, (Strings{"items", "me"}));
}

TEST(Dependencies, DependsAddsNoScopes) {
  App app;
  auto seen = std::make_shared<Strings>(Strings{"unset"});
  auto inner = gatehouse::dependency<int>([seen](const SecurityScopes& s) {
    *seen = s.scopes();
    return 1;
  });
  auto middle = gatehouse::dependency<int>([](const int& v) { return v; }, Depends(inner));
  app.get(
      "/x", {.name = "x"}, [](const int& v) { return json::value(v); }, Security(middle, {"a"}));
  (void)handle(app, {.target = "/x"});
  EXPECT_EQ(*seen, (Strings{"a"}));
}

TEST(Dependencies, SchemeRecordsAccumulatedScopesForOpenApi) {
  App app;
  auto bearer = make_bearer();
  auto user =
      gatehouse::dependency<std::string>([](const std::string& t) { return t; }, Depends(bearer));
  auto active = gatehouse::dependency<std::string>([](const std::string& u) { return u; },
                                                   Security(user, {"me"}));
  auto& route = app.get(
      "/x", {.name = "x"}, [](const std::string&) { return json::value(1); },
      Security(active, {"items"}));
  ASSERT_EQ(route.binding.security().size(), 1u);
  EXPECT_EQ(route.binding.security()[0].scheme->name, "OAuth2PasswordBearer");
  EXPECT_EQ(route.binding.security()[0].scopes, (Strings{"items", "me"}));
}

TEST(Dependencies, HttpExceptionStopsTheChain) {
  App app;
  auto later_calls = std::make_shared<int>(0);
  auto handler_calls = std::make_shared<int>(0);
  auto deny = gatehouse::dependency<int>([]() -> Outcome<int> {
    return Err{HttpException(403, "nope", {{"X-Why", "test"}})};
  });
  auto later = gatehouse::dependency<int>([later_calls]() { return ++*later_calls; });
  app.get(
      "/x", {.name = "x"},
      [handler_calls](const int&, const int&) {
        ++*handler_calls;
        return json::value(1);
      },
      Depends(deny), Depends(later));
  auto r = handle(app, {.target = "/x"});
  EXPECT_EQ(r.status, 403u);
  EXPECT_EQ(r.body, R"({"detail":"nope"})");
  EXPECT_EQ(header_of(r, "X-Why"), "test");
  EXPECT_EQ(*later_calls, 0);
  EXPECT_EQ(*handler_calls, 0);
}

TEST(Dependencies, ValidationErrorsFromTwoDependenciesMergedInOrder) {
  App app;
  auto handler_calls = std::make_shared<int>(0);
  auto a = gatehouse::dependency<int>([]() { return validation_failure("a"); });
  auto b = gatehouse::dependency<int>([]() { return validation_failure("b"); });
  app.get(
      "/x", {.name = "x"},
      [handler_calls](const int&, const int&) {
        ++*handler_calls;
        return json::value(1);
      },
      Depends(a), Depends(b));
  auto r = handle(app, {.target = "/x"});
  EXPECT_EQ(r.status, 422u);
  EXPECT_EQ(json::parse(r.body),
            (json::value{{"detail", json::array{error_at("query", "a"), error_at("query", "b")}}}));
  EXPECT_EQ(*handler_calls, 0);
}

TEST(Dependencies, DependentOfFailedValidationNotCalledButSiblingsAre) {
  App app;
  auto outer_calls = std::make_shared<int>(0);
  auto a = gatehouse::dependency<int>([]() { return validation_failure("a"); });
  auto outer = gatehouse::dependency<int>(
      [outer_calls](const int& v) { return v + ++*outer_calls; }, Depends(a));
  auto b = gatehouse::dependency<int>([]() { return validation_failure("b"); });
  app.get(
      "/x", {.name = "x"}, [](const int&, const int&) { return json::value(1); }, Depends(outer),
      Depends(b));
  auto r = handle(app, {.target = "/x"});
  EXPECT_EQ(r.status, 422u);
  EXPECT_EQ(json::parse(r.body),
            (json::value{{"detail", json::array{error_at("query", "a"), error_at("query", "b")}}}));
  EXPECT_EQ(*outer_calls, 0);
}

TEST(Dependencies, Later401WinsOverEarlier422) {
  // FastAPI gathers validation errors but lets an HTTPException raised by a later
  // dependency propagate at once.
  App app;
  auto a = gatehouse::dependency<int>([]() { return validation_failure("a"); });
  auto unauthorized = gatehouse::dependency<int>([]() -> Outcome<int> {
    return Err{HttpException(401, "Not authenticated", {{"WWW-Authenticate", "Bearer"}})};
  });
  app.get(
      "/x", {.name = "x"}, [](const int&, const int&) { return json::value(1); }, Depends(a),
      Depends(unauthorized));
  auto r = handle(app, {.target = "/x"});
  EXPECT_EQ(r.status, 401u);
  EXPECT_EQ(r.body, R"({"detail":"Not authenticated"})");
  EXPECT_EQ(header_of(r, "WWW-Authenticate"), "Bearer");
}

TEST(Dependencies, SameDependencyResolvedOncePerRequest) {
  // FastAPI caches a dependency's value for the request (use_cache=True): required twice
  // with the same scopes, it runs once.
  App app;
  auto calls = std::make_shared<int>(0);
  auto counted = gatehouse::dependency<int>([calls]() { return ++*calls; });
  app.get(
      "/x", {.name = "x"}, [](const int& a, const int& b) { return json::value(a + b); },
      Depends(counted), Depends(counted));
  auto r = handle(app, {.target = "/x"});
  EXPECT_EQ(r.status, 200u);
  EXPECT_EQ(*calls, 1);
  EXPECT_EQ(r.body, "2");
}

TEST(Dependencies, CacheIsPerRequest) {
  App app;
  auto calls = std::make_shared<int>(0);
  auto counted = gatehouse::dependency<int>([calls]() { return ++*calls; });
  app.get(
      "/x", {.name = "x"},
      [](const int& a, const int& b) {
        return json::value{{"a", a}, {"b", b}};
      },
      Depends(counted), Depends(counted));
  EXPECT_EQ(handle(app, {.target = "/x"}).body, R"({"a":1,"b":1})");
  EXPECT_EQ(handle(app, {.target = "/x"}).body, R"({"a":2,"b":2})");
}

TEST(Dependencies, CacheIsPerSetOfScopes) {
  // As FastAPI's cache key (call, sorted scopes): other scopes mean another call, the
  // same scopes in another order do not.
  App app;
  auto calls = std::make_shared<int>(0);
  auto counted = gatehouse::dependency<int>([calls](const SecurityScopes&) { return ++*calls; });
  app.get(
      "/s", {.name = "s"},
      [](const int& a, const int& b, const int& c) {
        return json::value{{"a", a}, {"b", b}, {"c", c}};
      },
      Security(counted, {"a"}), Security(counted, {"b"}), Depends(counted));
  app.get(
      "/t", {.name = "t"},
      [](const int& a, const int& b) {
        return json::value{{"a", a}, {"b", b}};
      },
      Security(counted, {"a", "b"}), Security(counted, {"b", "a"}));
  EXPECT_EQ(handle(app, {.target = "/s"}).body, R"({"a":1,"b":2,"c":3})");
  *calls = 0;
  EXPECT_EQ(handle(app, {.target = "/t"}).body, R"({"a":1,"b":1})");
}

TEST(Dependencies, RepeatedFailingDependencyRepeatsItsErrors) {
  // FastAPI caches only values: a dependency that fails validation is solved again and
  // its errors appear once per use.
  App app;
  auto a = gatehouse::dependency<int>([]() { return validation_failure("q"); });
  app.get(
      "/x", {.name = "x"}, [](const int&, const int&) { return json::value(1); }, Depends(a),
      Depends(a));
  auto r = handle(app, {.target = "/x"});
  EXPECT_EQ(r.status, 422u);
  EXPECT_EQ(json::parse(r.body),
            (json::value{{"detail", json::array{error_at("query", "q"), error_at("query", "q")}}}));
}

TEST(Dependencies, HandlerMayTakeRequestContext) {
  App app;
  app.get("/x", {.name = "x"}, [](gatehouse::RequestContext& ctx) {
    return json::value(std::string(ctx.request().query()));
  });
  auto r = handle(app, {.target = "/x?q=1"});
  EXPECT_EQ(r.status, 200u);
  EXPECT_EQ(r.body, R"("q=1")");
}

// ---- OAuth2PasswordBearer as a dependency --------------------------------------------------

App& bearer_app() {
  static App app;
  static bool once = [] {
    auto bearer = make_bearer();
    app.get(
        "/items/", {.name = "read_items"},
        [](const std::string& token) {
          return json::value{{"token", token}};
        },
        Depends(bearer));
    auto optional = make_bearer(false);
    app.get(
        "/optional/", {.name = "optional"},
        [](const std::string& token) {
          return json::value{{"token", token}};
        },
        Depends(optional));
    return true;
  }();
  (void)once;
  return app;
}

TEST(BearerDependency, MissingBearerGives401) {
  auto r = handle(bearer_app(), {.target = "/items/"});
  EXPECT_EQ(r.status, 401u);
  EXPECT_EQ(r.body, R"({"detail":"Not authenticated"})");
  EXPECT_EQ(r.content_type, "application/json");
  EXPECT_EQ(header_of(r, "WWW-Authenticate"), "Bearer");
}

TEST(BearerDependency, OtherSchemeGives401) {
  auto r =
      handle(bearer_app(), {.target = "/items/", .headers = {{"Authorization", "Basic am9objpz"}}});
  EXPECT_EQ(r.status, 401u);
  EXPECT_EQ(r.body, R"({"detail":"Not authenticated"})");
}

TEST(BearerDependency, TokenEchoed) {
  auto r =
      handle(bearer_app(), {.target = "/items/", .headers = {{"authorization", "bearer abc.def"}}});
  EXPECT_EQ(r.status, 200u);
  EXPECT_EQ(r.body, R"({"token":"abc.def"})");
}

TEST(BearerDependency, HeaderBytesReadAsLatin1) {
  auto r = handle(bearer_app(),
                  {.target = "/items/", .headers = {{"Authorization", "Bearer \xff\xfe"}}});
  EXPECT_EQ(r.status, 200u);
  EXPECT_EQ(json::parse(r.body).at("token").as_string(), "\xc3\xbf\xc3\xbe");
}

TEST(BearerDependency, FirstAuthorizationHeaderWins) {
  auto r = handle(bearer_app(),
                  {.target = "/items/",
                   .headers = {{"Authorization", "Bearer one"}, {"Authorization", "Bearer two"}}});
  EXPECT_EQ(r.body, R"({"token":"one"})");
}

TEST(BearerDependency, WithoutAutoErrorMissingBearerIsEmptyToken) {
  auto r = handle(bearer_app(), {.target = "/optional/"});
  EXPECT_EQ(r.status, 200u);
  EXPECT_EQ(r.body, R"({"token":""})");
}

// ---- OAuth2PasswordRequestForm -------------------------------------------------------------

App& form_app() {
  static App app;
  static bool once = [] {
    app.post(
        "/token", {.name = "login"},
        [](const OAuth2PasswordRequestForm& f) {
          json::object o;
          o["grant_type"] = f.grant_type ? json::value(*f.grant_type) : json::value(nullptr);
          o["username"] = f.username;
          o["password"] = f.password;
          json::array scopes;
          for (const auto& s : f.scopes) scopes.emplace_back(s);
          o["scopes"] = std::move(scopes);
          o["client_id"] = f.client_id ? json::value(*f.client_id) : json::value(nullptr);
          o["client_secret"] =
              f.client_secret ? json::value(*f.client_secret) : json::value(nullptr);
          return json::value(std::move(o));
        },
        Depends(OAuth2PasswordRequestForm::dependency()));
    return true;
  }();
  (void)once;
  return app;
}

gatehouse::Response post_form(std::string body,
                              std::string content_type = "application/x-www-form-urlencoded") {
  return handle(form_app(), {.method = "POST",
                             .target = "/token",
                             .headers = {{"Content-Type", std::move(content_type)}},
                             .body = std::move(body)});
}

TEST(PasswordForm, ValidFormParsed) {
  auto r = post_form(
      "grant_type=password&username=johndoe&password=s%65cret&scope=items+me&client_id=c&client_"
      "secret=s");
  EXPECT_EQ(r.status, 200u);
  EXPECT_EQ(json::parse(r.body),
            json::parse(R"({"grant_type":"password","username":"johndoe","password":"secret",)"
                        R"("scopes":["items","me"],"client_id":"c","client_secret":"s"})"));
}

TEST(PasswordForm, MissingUsernameAndPasswordGive422) {
  auto r = post_form("");
  EXPECT_EQ(r.status, 422u);
  EXPECT_EQ(r.body, kMissingBoth);
}

TEST(PasswordForm, NoContentTypeGives422) {
  auto r =
      handle(form_app(), {.method = "POST", .target = "/token", .body = "username=a&password=b"});
  EXPECT_EQ(r.status, 422u);
  EXPECT_EQ(r.body, kMissingBoth);
}

TEST(PasswordForm, JsonBodyGives422) {
  auto r = post_form(R"({"username":"a","password":"b"})", "application/json");
  EXPECT_EQ(r.status, 422u);
  EXPECT_EQ(r.body, kMissingBoth);
}

TEST(PasswordForm, MissingPasswordOnly) {
  auto r = post_form("username=johndoe");
  EXPECT_EQ(r.status, 422u);
  EXPECT_EQ(
      r.body,
      R"({"detail":[{"loc":["body","password"],"msg":"field required","type":"value_error.missing"}]})");
}

TEST(PasswordForm, EmptyValueCountsAsMissing) {
  auto r = post_form("username=&password=x");
  EXPECT_EQ(r.status, 422u);
  EXPECT_EQ(
      r.body,
      R"({"detail":[{"loc":["body","username"],"msg":"field required","type":"value_error.missing"}]})");
}

TEST(PasswordForm, LastEmptyDuplicateCountsAsMissing) {
  auto r = post_form("username=a&password=x&password=");
  EXPECT_EQ(r.status, 422u);
}

TEST(PasswordForm, BadGrantTypeGives422WithCtx) {
  auto r = post_form("grant_type=refresh_token&username=a&password=b");
  EXPECT_EQ(r.status, 422u);
  EXPECT_EQ(r.body, std::string(R"({"detail":[)") + std::string(kBadGrantError) + "]}");
}

TEST(PasswordForm, GrantTypeErrorComesBeforeMissingFields) {
  auto r = post_form("grant_type=xpassword");
  EXPECT_EQ(r.status, 422u);
  auto detail = json::parse(r.body).at("detail").as_array();
  ASSERT_EQ(detail.size(), 3u);
  EXPECT_EQ(detail[0], json::parse(kBadGrantError));
  EXPECT_EQ(detail[1].at("loc"), (json::array{"body", "username"}));
  EXPECT_EQ(detail[2].at("loc"), (json::array{"body", "password"}));
}

TEST(PasswordForm, GrantTypeMatchIsAnchoredAtStartOnly) {
  EXPECT_EQ(post_form("grant_type=passwordX&username=a&password=b").status, 200u);
  EXPECT_EQ(post_form("grant_type=PASSWORD&username=a&password=b").status, 422u);
  EXPECT_EQ(post_form("grant_type=+password&username=a&password=b").status, 422u);
}

TEST(PasswordForm, EmptyGrantTypeIsAbsent) {
  auto r = post_form("grant_type=&username=a&password=b");
  EXPECT_EQ(r.status, 200u);
  EXPECT_TRUE(json::parse(r.body).at("grant_type").is_null());
}

TEST(PasswordForm, FilePartGivesStrTypeError) {
  auto r = post_form(
      "--B\r\nContent-Disposition: form-data; name=\"username\"; "
      "filename=\"u.txt\"\r\n\r\njohndoe\r\n"
      "--B\r\nContent-Disposition: form-data; name=\"password\"\r\n\r\nsecret\r\n--B--\r\n",
      "multipart/form-data; boundary=B");
  EXPECT_EQ(r.status, 422u);
  EXPECT_EQ(
      r.body,
      R"({"detail":[{"loc":["body","username"],"msg":"str type expected","type":"type_error.str"}]})");
}

TEST(PasswordForm, MultipartAccepted) {
  auto r = post_form(
      "--B\r\nContent-Disposition: form-data; name=\"username\"\r\n\r\njohndoe\r\n"
      "--B\r\nContent-Disposition: form-data; name=\"password\"\r\n\r\nsecret\r\n--B--\r\n",
      "multipart/form-data; boundary=B");
  EXPECT_EQ(r.status, 200u);
  EXPECT_EQ(json::parse(r.body).at("username").as_string(), "johndoe");
}

TEST(PasswordForm, MultipartWithoutBoundaryGives400) {
  auto r = post_form("--B\r\n", "multipart/form-data");
  EXPECT_EQ(r.status, 400u);
  EXPECT_EQ(r.body, R"({"detail":"Missing boundary in multipart."})");
}

TEST(PasswordForm, GarbageMultipartGives400) {
  auto r = post_form("garbage", "multipart/form-data; boundary=B");
  EXPECT_EQ(r.status, 400u);
  EXPECT_EQ(r.body, R"({"detail":"There was an error parsing the body"})");
}

TEST(PasswordForm, ScopeSplitOnWhitespace) {
  auto r = post_form("username=a&password=b&scope=items%09me%C2%A0x++y");
  EXPECT_EQ(json::parse(r.body).at("scopes"), (json::array{"items", "me", "x", "y"}));
}

TEST(PasswordForm, SemicolonSeparator) {
  auto r = post_form("username=johndoe;password=secret");
  EXPECT_EQ(r.status, 200u);
  EXPECT_EQ(json::parse(r.body).at("password").as_string(), "secret");
}

// ---- routing: 404, 405, 307, HEAD ---------------------------------------------------------------

struct RoutingApp {
  App app;
  std::shared_ptr<int> calls = std::make_shared<int>(0);
  RoutingApp() {
    auto counted = gatehouse::dependency<int>([c = calls]() { return ++*c; });
    app.get(
        "/users/me/", {.name = "read_users_me"}, [](const int&) { return json::value("me"); },
        Depends(counted));
    app.post(
        "/token", {.name = "login"}, [](const int&) { return json::value("token"); },
        Depends(counted));
  }
};

TEST(Routing, UnknownPathGives404) {
  RoutingApp a;
  auto r = handle(a.app, {.target = "/nope"});
  EXPECT_EQ(r.status, 404u);
  EXPECT_EQ(r.body, R"({"detail":"Not Found"})");
  EXPECT_EQ(r.content_type, "application/json");
}

TEST(Routing, PathsAreCaseSensitive) {
  RoutingApp a;
  EXPECT_EQ(handle(a.app, {.target = "/Users/me/"}).status, 404u);
}

TEST(Routing, MatchingRouteRuns) {
  RoutingApp a;
  auto r = handle(a.app, {.target = "/users/me/?x=1"});
  EXPECT_EQ(r.status, 200u);
  EXPECT_EQ(r.body, R"("me")");
  EXPECT_EQ(*a.calls, 1);
}

TEST(Routing, WrongMethodGives405WithAllowBeforeDependencies) {
  RoutingApp a;
  auto r = handle(a.app, {.method = "POST", .target = "/users/me/"});
  EXPECT_EQ(r.status, 405u);
  EXPECT_EQ(r.body, R"({"detail":"Method Not Allowed"})");
  EXPECT_EQ(header_of(r, "Allow"), "GET");
  auto t = handle(a.app, {.method = "GET", .target = "/token"});
  EXPECT_EQ(t.status, 405u);
  EXPECT_EQ(header_of(t, "Allow"), "POST");
  EXPECT_EQ(*a.calls, 0);
}

TEST(Routing, MethodsAreCaseSensitive) {
  RoutingApp a;
  EXPECT_EQ(handle(a.app, {.method = "get", .target = "/users/me/"}).status, 405u);
}

TEST(Routing, HeadOnApiRouteGives405) {
  RoutingApp a;
  auto r = handle(a.app, {.method = "HEAD", .target = "/users/me/"});
  EXPECT_EQ(r.status, 405u);
  EXPECT_EQ(header_of(r, "Allow"), "GET");
}

TEST(Routing, MissingSlashRedirects307WithHostAndQuery) {
  RoutingApp a;
  auto r =
      handle(a.app, {.target = "/users/me?x=1&y=%20", .headers = {{"Host", "example.com:8080"}}});
  EXPECT_EQ(r.status, 307u);
  EXPECT_EQ(header_of(r, "Location"), "http://example.com:8080/users/me/?x=1&y=%20");
  EXPECT_EQ(r.body, "");
  EXPECT_EQ(r.content_type, "");
  EXPECT_EQ(*a.calls, 0);
}

TEST(Routing, ExtraSlashRedirectsToRouteWithout) {
  RoutingApp a;
  auto r = handle(a.app, {.method = "POST", .target = "/token/", .headers = {{"Host", "h"}}});
  EXPECT_EQ(r.status, 307u);
  EXPECT_EQ(header_of(r, "Location"), "http://h/token");
}

TEST(Routing, RedirectComesBeforeMethodCheck) {
  RoutingApp a;
  auto r = handle(a.app, {.method = "DELETE", .target = "/users/me", .headers = {{"Host", "h"}}});
  EXPECT_EQ(r.status, 307u);
}

TEST(Routing, RedirectWithoutHostUsesLocalAuthority) {
  RoutingApp a;
  auto r = handle(a.app, {.target = "/users/me"});
  EXPECT_EQ(header_of(r, "Location"), "http://127.0.0.1/users/me/");
}

TEST(Routing, RedirectKeepsScheme) {
  RoutingApp a;
  auto r = handle(a.app, {.target = "/users/me", .headers = {{"Host", "h"}}, .scheme = "https"});
  EXPECT_EQ(header_of(r, "Location"), "https://h/users/me/");
}

TEST(Routing, RootIsNotRedirected) {
  RoutingApp a;
  EXPECT_EQ(handle(a.app, {.target = "/"}).status, 404u);
}

TEST(Routing, HeadOnDocsRoutesAnswered) {
  RoutingApp a;
  EXPECT_EQ(handle(a.app, {.method = "HEAD", .target = "/openapi.json"}).status, 200u);
  EXPECT_EQ(handle(a.app, {.method = "HEAD", .target = "/docs"}).status, 200u);
  EXPECT_EQ(handle(a.app, {.method = "HEAD", .target = "/redoc"}).status, 200u);
}

TEST(Routing, DocsRoute405AllowsGetAndHead) {
  RoutingApp a;
  auto r = handle(a.app, {.method = "POST", .target = "/openapi.json"});
  EXPECT_EQ(r.status, 405u);
  auto allow = header_of(r, "Allow").value_or("");
  // Starlette's order depends on a Python set: compare as a set.
  std::set<std::string> methods;
  for (std::size_t start = 0; start <= allow.size();) {
    auto comma = allow.find(',', start);
    auto part = allow.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    while (!part.empty() && part.front() == ' ') part.erase(0, 1);
    methods.insert(part);
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  EXPECT_EQ(methods, (std::set<std::string>{"GET", "HEAD"}));
}

TEST(Routing, DocsPagesAreHtml) {
  RoutingApp a;
  auto r = handle(a.app, {.target = "/docs"});
  EXPECT_EQ(r.status, 200u);
  EXPECT_EQ(r.content_type, "text/html; charset=utf-8");
  EXPECT_NE(r.body.find("SwaggerUIBundle"), std::string::npos);
  EXPECT_NE(r.body.find("/openapi.json"), std::string::npos);
  auto redoc = handle(a.app, {.target = "/redoc"});
  EXPECT_NE(redoc.body.find("/openapi.json"), std::string::npos);
}

TEST(Routing, DisabledDocsUrlHasNoDocsRoute) {
  gatehouse::AppInfo info;
  info.docs_url.clear();
  App app(info);
  EXPECT_EQ(handle(app, {.target = "/docs"}).status, 404u);
  EXPECT_EQ(handle(app, {.target = "/openapi.json"}).status, 200u);
}

}  // namespace
