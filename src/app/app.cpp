// App: route registration, Starlette-order routing (full match, 405, slash redirect,
// 404) and running a route's bound dependency tree.
#include "gatehouse/app.hpp"

#include <boost/json/serialize.hpp>

#include "gatehouse/store.hpp"
#include "http/form.hpp"
#include "http/text.hpp"
#include "openapi/docs_pages.hpp"

namespace gatehouse {

namespace {

// urllib.parse.quote(url, safe=":/%#?=@[]!$&'()*+,;"), applied to UTF-8 bytes.
std::string quote_location(std::string_view url) {
  static constexpr std::string_view kSafe = ":/%#?=@[]!$&'()*+,;_.-~";
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (char ch : url) {
    auto c = static_cast<unsigned char>(ch);
    bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
    if (alnum || (c < 0x80 && kSafe.find(static_cast<char>(c)) != std::string_view::npos)) {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

}  // namespace

App::App(AppInfo info) : info_(std::move(info)) { add_docs_routes(); }

Route& App::add_route(Route route) {
  route.index = routes_.size();
  routes_.push_back(std::make_unique<Route>(std::move(route)));
  return *routes_.back();
}

Dispatch App::dispatch(const Request& request) const {
  const std::string& path = request.path();
  const auto method = request.method();
  const Route* partial = nullptr;
  for (const auto& r : routes_) {
    if (r->path != path) continue;
    if (r->method == method || (r->allow_head && method == "HEAD")) return Dispatch{r.get(), {}};
    if (partial == nullptr) partial = r.get();
  }
  if (partial != nullptr) {
    // Starlette answers 405 with the methods of the first route on that path; this
    // comes before any dependency, so before authentication.
    std::string allow = partial->method;
    if (partial->allow_head) allow += ", HEAD";
    return Dispatch{nullptr,
                    HttpException(405, "Method Not Allowed", {{"Allow", allow}}).to_response()};
  }
  if (path != "/" && !path.empty()) {
    std::string other = path.back() == '/' ? path.substr(0, path.size() - 1) : path + "/";
    for (const auto& r : routes_) {
      if (r->path != other) continue;
      // Starlette's redirect_slashes: 307 to the same URL with the slash toggled.
      std::string url = http::latin1_to_utf8(request.scheme()) + "://";
      // An empty Host (RFC 9110 §7.2: the target has no authority) names no host
      // either: the server's own address is used, as without one.
      auto host = request.header("Host");
      url += host && !host->empty() ? http::latin1_to_utf8(*host)
                                    : std::string(request.local_authority());
      url += other;
      if (auto q = request.query(); !q.empty()) {
        url += '?';
        url += q;
      }
      Response res;
      res.status = 307;
      res.content_type.clear();
      res.headers.emplace_back("Location", quote_location(url));
      return Dispatch{nullptr, std::move(res)};
    }
  }
  return Dispatch{nullptr, HttpException(404, "Not Found").to_response()};
}

// The database does not answer (or not in time): a 503 the client may retry, as an
// overloaded server's, and a log line with the reason. StoreWouldBlock is no
// std::exception and passes through both run() and precheck() to the server.
Response App::store_unavailable(const Route& route, const Request& request,
                                const std::exception& e) const {
  logger_->event(LogLevel::warning, "store_unavailable",
                 {{"request_id", request.request_id()},
                  {"method", route.method},
                  {"route", route.path},
                  {"error", e.what()}});
  return HttpException(503, "Service Unavailable: the database is not answering, try again",
                       {{"Retry-After", "1"}})
      .to_response();
}

Response App::run(const Route& route, const Request& request) const {
  try {
    return run_unguarded(route, request);
  } catch (const StoreUnavailable& e) {
    return store_unavailable(route, request, e);
  } catch (const std::exception& e) {
    // A dependency that could not do its work (the database is down, ...): the client
    // gets a 500 with a JSON body, the log gets the reason, the server goes on.
    logger_->event(LogLevel::error, "handler_error",
                   {{"request_id", request.request_id()},
                    {"method", route.method},
                    {"route", route.path},
                    {"error", e.what()}});
    return HttpException(500, "Internal Server Error").to_response();
  }
}

Response App::run_unguarded(const Route& route, const Request& request) const {
  RequestContext ctx(request);
  if (route.binding.has_form_body()) {
    // FastAPI reads a form body before solving any dependency.
    auto form = http::parse_form(request.header("Content-Type").value_or(""), request.body());
    if (!form) return HttpException(400, std::move(form).error()).to_response();
    ctx.set_form(std::move(*form));
  }
  auto result = route.resolve(ctx);
  Response response = result ? std::move(*result) : result.error().to_response();
  response.not_before = ctx.not_before();
  return response;
}

std::optional<Response> App::precheck(const Route& route, const Request& request) const {
  if (!route.options.precheck) return std::nullopt;
  try {
    RequestContext ctx(request);
    if (route.binding.has_form_body()) {
      auto form = http::parse_form(request.header("Content-Type").value_or(""), request.body());
      if (!form) return std::nullopt;  // run() answers the 400
      ctx.set_form(std::move(*form));
    }
    return route.options.precheck(ctx);
  } catch (const StoreUnavailable& e) {
    return store_unavailable(route, request, e);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "gatehouse: error: %s %s: %s\n", route.method.c_str(), route.path.c_str(),
                 e.what());
    return HttpException(500, "Internal Server Error").to_response();
  }
}

bool App::offloads(const Route& route, const Request& request) const {
  if (!route.options.offload) return false;
  if (!route.options.offload_if) return true;
  try {
    RequestContext ctx(request);
    if (route.binding.has_form_body()) {
      auto form = http::parse_form(request.header("Content-Type").value_or(""), request.body());
      if (!form) return true;  // run() answers the 400
      ctx.set_form(std::move(*form));
    }
    return route.options.offload_if(ctx);
  } catch (...) {
    return true;  // undecided (a store that would block, a parse error): the pool
  }
}

Response App::handle(const Request& request) const {
  auto d = dispatch(request);
  if (d.route == nullptr) return std::move(*d.response);
  if (auto early = precheck(*d.route, request)) return std::move(*early);
  Response r = run(*d.route, request);
  if (r.later) return r.later->wait();
  return r;
}

void App::add_docs_routes() {
  auto page = [this](std::string path, std::string name, std::function<Response()> make) {
    if (path.empty()) return;
    Route r;
    r.method = "GET";
    r.allow_head = true;
    r.path = std::move(path);
    r.options.name = std::move(name);
    r.options.include_in_schema = false;
    r.resolve = [make = std::move(make)](RequestContext&) -> Outcome<Response> { return make(); };
    add_route(std::move(r));
  };
  page(info_.openapi_url, "openapi", [this] {
    std::call_once(openapi_once_, [this] { openapi_json_ = boost::json::serialize(openapi()); });
    Response r;
    r.body = openapi_json_;
    return r;
  });
  if (info_.docs_url.empty()) return;
  const std::string assets = info_.docs_url + "/assets/";
  const std::string web_dir = docs::find_web_dir(info_.web_dir);
  page(info_.docs_url, "swagger_ui_html",
       [this, assets] { return Response::html(docs::swagger_ui_html(info_, assets)); });
  page(info_.docs_url + "/oauth2-redirect", "swagger_ui_redirect",
       [web_dir] { return docs::oauth2_redirect_page(web_dir); });
  page(info_.redoc_url, "redoc_html",
       [this, assets] { return Response::html(docs::redoc_html(info_, assets)); });
  for (const char* file : docs::kAssetFiles) {
    page(assets + file, "asset", [web_dir, file] { return docs::static_file(web_dir, file); });
  }
}

}  // namespace gatehouse
