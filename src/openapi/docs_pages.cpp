#include "openapi/docs_pages.hpp"

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

namespace gatehouse::docs {

namespace {

std::string html_escape(std::string_view s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

// A JavaScript string literal (single-quoted) safe inside a <script> element.
std::string js_string(std::string_view s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'' || c == '\\') {
      out += '\\';
      out += c;
    } else if (c == '<') {
      out += "\\x3c";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out + "'";
}

std::string content_type_for(const std::string& name) {
  auto ext = std::filesystem::path(name).extension().string();
  if (ext == ".js") return "text/javascript; charset=utf-8";
  if (ext == ".css") return "text/css; charset=utf-8";
  if (ext == ".png") return "image/png";
  if (ext == ".html") return "text/html; charset=utf-8";
  return "application/octet-stream";
}

}  // namespace

std::string find_web_dir(const std::string& configured) {
  if (!configured.empty()) return configured;
  std::error_code ec;
  auto exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (ec) return "web";
  auto dir = exe.parent_path();
  for (const auto& candidate : {dir / "web", dir.parent_path() / "share" / "gatehouse" / "web"}) {
    if (std::filesystem::is_directory(candidate, ec)) return candidate.string();
  }
  return (dir / "web").string();
}

std::string swagger_ui_html(const AppInfo& info, const std::string& assets) {
  std::string html = R"(<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>)" + html_escape(info.title) +
                     R"( - Swagger UI</title>
<link type="text/css" rel="stylesheet" href=")" +
                     html_escape(assets) + R"(swagger-ui.css">
<link rel="icon" type="image/png" href=")" +
                     html_escape(assets) + R"(favicon-32x32.png">
</head>
<body>
<div id="swagger-ui"></div>
<script src=")" + html_escape(assets) +
                     R"(swagger-ui-bundle.js"></script>
<script>
const ui = SwaggerUIBundle({
  url: )" + js_string(info.openapi_url) +
                     R"(,
  dom_id: '#swagger-ui',
  layout: 'BaseLayout',
  deepLinking: true,
  showExtensions: true,
  showCommonExtensions: true,
  oauth2RedirectUrl: window.location.origin + )" +
                     js_string(info.docs_url + "/oauth2-redirect") + R"(,
  presets: [
    SwaggerUIBundle.presets.apis,
    SwaggerUIBundle.SwaggerUIStandalonePreset
  ],
})
</script>
</body>
</html>
)";
  return html;
}

std::string redoc_html(const AppInfo& info, const std::string& assets) {
  return R"(<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>)" +
         html_escape(info.title) + R"( - ReDoc</title>
<link rel="icon" type="image/png" href=")" +
         html_escape(assets) + R"(favicon-32x32.png">
<style>body { margin: 0; padding: 0; }</style>
</head>
<body>
<noscript>ReDoc needs JavaScript to show the documentation.</noscript>
<redoc spec-url=")" +
         html_escape(info.openapi_url) + R"("></redoc>
<script src=")" +
         html_escape(assets) + R"(redoc.standalone.js"></script>
</body>
</html>
)";
}

Response oauth2_redirect_page(const std::string& web_dir) {
  std::ifstream in(std::filesystem::path(web_dir) / "oauth2-redirect.js", std::ios::binary);
  if (!in) return HttpException(404, "Not Found").to_response();
  std::ostringstream script;
  script << in.rdbuf();
  std::string js = script.str();
  // Keep the script inside its element whatever it contains.
  for (std::size_t p = 0; (p = js.find("</script", p)) != std::string::npos; p += 3)
    js.replace(p, 2, "<\\/");
  return Response::html(
      "<!doctype html>\n<html lang=\"en-US\">\n<head>\n<title>Swagger UI: OAuth2 "
      "Redirect</title>\n</head>\n<body>\n<script>\n" +
      js + "\n</script>\n</body>\n</html>\n");
}

Response static_file(const std::string& dir, const std::string& name) {
  auto path = std::filesystem::path(dir) / name;
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) {
    return HttpException(404, "Not Found").to_response();
  }
  Response r;
  r.file_path = path.string();
  r.content_type = content_type_for(name);
  r.headers.emplace_back("Cache-Control", "public, max-age=3600");
  return r;
}

}  // namespace gatehouse::docs
