// The /docs (Swagger UI) and /redoc pages, and the asset files they load. The
// assets come from npm's swagger-ui-dist and redoc, copied next to the binary at
// build time: nothing is fetched from a CDN.
#pragma once

#include <string>

#include "gatehouse/app.hpp"

namespace gatehouse::docs {

inline constexpr const char* kAssetFiles[] = {"swagger-ui-bundle.js", "swagger-ui.css",
                                              "favicon-32x32.png", "redoc.standalone.js"};

// `configured` if set, else web/ next to the executable, else ../share/gatehouse/web.
std::string find_web_dir(const std::string& configured);
std::string swagger_ui_html(const AppInfo& info, const std::string& assets_url);
// Swagger UI's OAuth2 redirect page: swagger-ui-dist's oauth2-redirect.js inline, as
// FastAPI serves it (the page must work at /docs/oauth2-redirect without a sibling file).
Response oauth2_redirect_page(const std::string& web_dir);
std::string redoc_html(const AppInfo& info, const std::string& assets_url);
// A response streaming `name` from `dir`, or 404 when it is not there.
Response static_file(const std::string& dir, const std::string& name);

}  // namespace gatehouse::docs
