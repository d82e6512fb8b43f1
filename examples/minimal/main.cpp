// A service of its own with FastAPI-style security: a bearer scheme, a dependency
// that checks the token and the scopes the route asks for, and two routes. Run with
// SECRET_KEY set; get a token from any gatehouse (or FastAPI app) sharing that key.
//
//   ./example_service 8080 &
//   curl localhost:8080/openapi.json
//   curl localhost:8080/reports/ -H "Authorization: Bearer $TOKEN"
#include <gatehouse/gatehouse.hpp>

#include <algorithm>
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
  auto key = std::make_shared<jwt::Hs256Key>(secret);

  OAuth2PasswordBearer oauth2_scheme({
      .token_url = "http://127.0.0.1:8000/token",
      .scopes = {{"reports", "Read reports."}},
  });

  // Who is calling, if the token is valid and carries every scope the route needs.
  auto current_subject = dependency<std::string>(
      [key](const SecurityScopes& security_scopes,
            const std::string& token) -> Outcome<std::string> {
        Headers challenge{
            {"WWW-Authenticate", security_scopes.empty()
                                     ? std::string("Bearer")
                                     : "Bearer scope=\"" + security_scopes.scope_str() + "\""}};
        auto claims = jwt::decode(*key, token, jwt::now_seconds());
        if (!claims) return Err{HttpException(401, "Could not validate credentials", challenge)};
        auto data = jwt::TokenData::from_claims(*claims);
        if (!data) return Err{HttpException(401, "Could not validate credentials", challenge)};
        for (const auto& needed : security_scopes.scopes()) {
          if (std::find(data->scopes.begin(), data->scopes.end(), needed) == data->scopes.end()) {
            return Err{HttpException(401, "Not enough permissions", challenge)};
          }
        }
        return data->username;
      },
      Depends(oauth2_scheme));

  App app({.title = "Reports", .version = "1.0.0"});
  app.get(
      "/whoami/", {.name = "whoami"},
      [](const std::string& subject) {
        return boost::json::value{{"subject", subject}};
      },
      Depends(current_subject));
  app.get(
      "/reports/", {.name = "list_reports"},
      [](const std::string& subject) {
        return boost::json::value(boost::json::array{{{"id", 1}, {"owner", subject}}});
      },
      Security(current_subject, {"reports"}));

  ServerOptions options;
  options.port = static_cast<std::uint16_t>(argc > 1 ? std::stoi(argv[1]) : 8080);
  serve(app, options);
}
