// The OpenAPI document (src/openapi/openapi.cpp), derived from the route table.
// data/reference_openapi.json is the reference FastAPI app's /openapi.json (FastAPI
// 0.92), saved byte for byte; the tutorial app must produce exactly that.
#include <gtest/gtest.h>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>

#include "gatehouse/app.hpp"
#include "gatehouse/jwt.hpp"
#include "gatehouse/model.hpp"
#include "gatehouse/password.hpp"
#include "gatehouse/security.hpp"
#include "test_support.hpp"
#include "token_fixtures.hpp"
#include "tutorial.hpp"

#ifndef GATEHOUSE_REFERENCE_OPENAPI
#error "CMake passes the path of data/reference_openapi.json"
#endif

namespace {

namespace json = boost::json;
using gatehouse::App;
using gatehouse::Depends;
using gatehouse::Security;

std::string reference_openapi_text() {
  std::ifstream in(GATEHOUSE_REFERENCE_OPENAPI, std::ios::binary);
  EXPECT_TRUE(in) << "cannot read " << GATEHOUSE_REFERENCE_OPENAPI;
  std::stringstream ss;
  ss << in.rdbuf();
  std::string text = ss.str();
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
  return text;
}

std::unique_ptr<App> tutorial_app() {
  auto app = std::make_unique<App>();
  tutorial::Config config;
  config.users = std::make_shared<testing_support::FakeUserStore>(gatehouse::demo_users());
  config.secret_key =
      std::make_shared<const gatehouse::jwt::Hs256Key>(std::string(fixtures::kReferenceKey));
  config.passwords =
      std::make_shared<const gatehouse::PasswordHasher>(gatehouse::Argon2Params{1024, 1, 1});
  tutorial::install(*app, config);
  return app;
}

gatehouse::OAuth2PasswordBearer bearer(std::string name, std::string token_url = "token") {
  return gatehouse::OAuth2PasswordBearer({.token_url = std::move(token_url),
                                          .scopes = {{"read", "Read."}},
                                          .scheme_name = std::move(name)});
}

TEST(OpenApi, TutorialDocumentEqualsReference) {
  auto app = tutorial_app();
  EXPECT_EQ(app->openapi(), json::parse(reference_openapi_text()));
}

TEST(OpenApi, TutorialDocumentSerialisedByteForByte) {
  auto app = tutorial_app();
  EXPECT_EQ(json::serialize(app->openapi()), reference_openapi_text());
}

TEST(OpenApi, ServedAtOpenapiJson) {
  auto app = tutorial_app();
  auto r = testing_support::handle(*app, {.target = "/openapi.json"});
  EXPECT_EQ(r.status, 200u);
  EXPECT_EQ(r.content_type, "application/json");
  EXPECT_EQ(r.body, reference_openapi_text());
}

TEST(OpenApi, InfoIsConfigurable) {
  gatehouse::AppInfo info;
  info.title = "Gate";
  info.version = "2.0";
  App app(info);
  auto doc = app.openapi();
  EXPECT_EQ(doc.at("openapi"), json::value("3.0.2"));
  EXPECT_EQ(doc.at("info"), json::parse(R"({"title":"Gate","version":"2.0"})"));
}

TEST(OpenApi, DocsRoutesNotInSchema) {
  App app;
  EXPECT_EQ(app.openapi(),
            json::parse(
                R"({"openapi":"3.0.2","info":{"title":"FastAPI","version":"0.1.0"},"paths":{}})"));
}

TEST(OpenApi, OnlySchemesInUseArePublished) {
  App app;
  auto used = bearer("UsedScheme");
  auto unused = bearer("UnusedScheme", "other-token");
  (void)unused;
  app.get(
      "/a", {.name = "read_a"}, [](const std::string&) { return json::value(1); },
      Security(used, {"read"}));
  app.get("/b", {.name = "read_b"}, [] { return json::value(2); });
  auto doc = app.openapi();
  const auto& schemes = doc.at("components").at("securitySchemes").as_object();
  EXPECT_EQ(schemes.size(), 1u);
  EXPECT_TRUE(schemes.contains("UsedScheme"));
  EXPECT_EQ(doc.at("paths").at("/a").at("get").at("security"),
            json::parse(R"([{"UsedScheme":["read"]}])"));
  EXPECT_FALSE(doc.at("paths").at("/b").at("get").as_object().contains("security"));
}

TEST(OpenApi, TwoSchemesOnOneRouteBothListedInOrder) {
  App app;
  auto first = bearer("First");
  auto second = bearer("Second");
  app.get(
      "/both", {.name = "both"},
      [](const std::string&, const std::string&) { return json::value(1); }, Depends(first),
      Security(second, {"read"}));
  auto doc = app.openapi();
  EXPECT_EQ(doc.at("paths").at("/both").at("get").at("security"),
            json::parse(R"([{"First":[]},{"Second":["read"]}])"));
  EXPECT_EQ(doc.at("components").at("securitySchemes").as_object().size(), 2u);
}

TEST(OpenApi, RepeatedSchemeRequirementListedOnce) {
  // FastAPI flattens the dependency tree with skip_repeats: a scheme reached twice with
  // the same scopes is one security requirement.
  App app;
  auto scheme = bearer("S");
  auto user =
      gatehouse::dependency<std::string>([](const std::string& t) { return t; }, Depends(scheme));
  app.get(
      "/dup", {.name = "dup"},
      [](const std::string&, const std::string&) { return json::value(1); }, Depends(scheme),
      Depends(user));
  EXPECT_EQ(app.openapi().at("paths").at("/dup").at("get").at("security"),
            json::parse(R"([{"S":[]}])"));
}

TEST(OpenApi, SameSchemeWithOtherScopesListedAgain) {
  App app;
  auto scheme = bearer("S");
  auto user =
      gatehouse::dependency<std::string>([](const std::string& t) { return t; }, Depends(scheme));
  app.get(
      "/scoped", {.name = "scoped"},
      [](const std::string&, const std::string&) { return json::value(1); },
      Security(user, {"read"}), Depends(scheme));
  EXPECT_EQ(app.openapi().at("paths").at("/scoped").at("get").at("security"),
            json::parse(R"([{"S":["read"]},{"S":[]}])"));
}

TEST(OpenApi, NoFormRouteMeansNoValidationSchemas) {
  App app;
  app.get("/b", {.name = "read_b"}, [] { return json::value(2); });
  auto doc = app.openapi();
  EXPECT_FALSE(doc.as_object().contains("components"));
  EXPECT_FALSE(doc.at("paths").at("/b").at("get").at("responses").as_object().contains("422"));
}

TEST(OpenApi, ExcludedRouteNotPublished) {
  App app;
  app.get("/hidden", {.name = "hidden", .include_in_schema = false}, [] { return json::value(1); });
  EXPECT_TRUE(app.openapi().at("paths").as_object().empty());
}

TEST(OpenApi, SummaryOverride) {
  App app;
  app.get("/s", {.name = "some_name", .summary = "Custom"}, [] { return json::value(1); });
  EXPECT_EQ(app.openapi().at("paths").at("/s").at("get").at("summary"), json::value("Custom"));
}

TEST(OpenApi, ModelSchemaLikePydantic) {
  gatehouse::Model m{"Thing", {{"thing_id", "integer", true}, {"note", "string"}}};
  m.fields[1].default_value = json::value("x");
  EXPECT_EQ(json::value(m.schema()),
            json::parse(R"({"title":"Thing","required":["thing_id"],"type":"object","properties":)"
                        R"({"thing_id":{"title":"Thing Id","type":"integer"},)"
                        R"("note":{"title":"Note","type":"string","default":"x"}}})"));
}

// ---- names ------------------------------------------------------------------------------

TEST(PythonTitle, LikeStrTitle) {
  EXPECT_EQ(gatehouse::python_title("client_id"), "Client Id");
  EXPECT_EQ(gatehouse::python_title("oauth2_token"), "Oauth2 Token");
  EXPECT_EQ(gatehouse::python_title("read_users_me"), "Read Users Me");
  EXPECT_EQ(gatehouse::python_title("HTTPValidation"), "Httpvalidation");
  EXPECT_EQ(gatehouse::python_title("x2y"), "X2Y");
  EXPECT_EQ(gatehouse::python_title("a__b"), "A  B");
  EXPECT_EQ(gatehouse::python_title("_private"), " Private");
  EXPECT_EQ(gatehouse::python_title("mixedCase_name"), "Mixedcase Name");
  EXPECT_EQ(gatehouse::python_title(""), "");
}

TEST(RouteOperationId, LikeFastApiGenerateUniqueId) {
  gatehouse::Route r;
  r.method = "GET";
  r.path = "/users/me/";
  r.options.name = "read_users_me";
  EXPECT_EQ(r.operation_id(), "read_users_me_users_me__get");
  r.method = "POST";
  r.path = "/token";
  r.options.name = "login_for_access_token";
  EXPECT_EQ(r.operation_id(), "login_for_access_token_token_post");
  r.method = "GET";
  r.path = "/items/{item_id}";
  r.options.name = "read_item";
  EXPECT_EQ(r.operation_id(), "read_item_items__item_id__get");
  r.method = "DELETE";
  r.path = "/a-b.c";
  r.options.name = "x";
  EXPECT_EQ(r.operation_id(), "x_a_b_c_delete");
}

}  // namespace
