// A service of its own with FastAPI-style security: a bearer scheme, the library's
// ready dependency that checks the token and the scopes the route asks for, and two
// routes. Run with SECRET_KEY set; get a token from any gatehouse (or FastAPI app)
// sharing that key.
//
//   ./example_service 8080 &
//   curl localhost:8080/openapi.json
//   curl localhost:8080/reports/ -H "Authorization: Bearer $TOKEN"
#include <gatehouse/gatehouse.hpp>

#include <cstdlib>
#include <iostream>
#include <string>

using namespace gatehouse;

int main(int argc, char** argv) {
  const char* secret = std::getenv("SECRET_KEY");
  if (secret == nullptr) {
    std::cerr << "set SECRET_KEY\n";
    return 2;
  }
  // How tokens are checked, configured once: HS256 with SECRET_KEY, FastAPI's default.
  auto verifier = Verifier::hs256(secret);

  OAuth2PasswordBearer oauth2_scheme({
      .token_url = "http://127.0.0.1:8000/token",
      .scopes = {{"reports", "Read reports."}},
  });

  // The token's verified claims, holding every scope the route needs; a bad token or a
  // missing scope gets FastAPI's 401.
  auto current_claims = bearer_claims(verifier, oauth2_scheme);

  App app({.title = "Reports", .version = "1.0.0"});
  app.get(
      "/whoami/", {.name = "whoami"},
      [](const VerifiedToken& token) {
        return boost::json::value{{"subject", token.subject}};
      },
      Depends(current_claims));
  app.get(
      "/reports/", {.name = "list_reports"},
      [](const VerifiedToken& token) {
        return boost::json::value(boost::json::array{{{"id", 1}, {"owner", token.subject}}});
      },
      Security(current_claims, {"reports"}));

  ServerOptions options;
  options.port = static_cast<std::uint16_t>(argc > 1 ? std::stoi(argv[1]) : 8080);
  serve(app, options);
}
