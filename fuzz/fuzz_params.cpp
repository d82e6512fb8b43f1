// Request parameters and JSON bodies as a route declared with params.hpp and
// models.hpp decodes them: the input is a path segment, a newline, a query string, a
// newline, a Cookie header value, a newline, then a JSON body. It goes through
// App::handle (the router, src/http/query.cpp's query and cookie parsing, the
// Path/Query/Header/Cookie conversions of src/engine/params.cpp and the JSON body and
// model decoding of models.hpp / src/engine/models.cpp), and the pieces also go to
// parse_query_string, parse_cookies and from_json<T> directly. The route's query
// parameters carry constraints (ge/lt, min_length/max_length) and a list (?tag=1&tag=2).
//
// Findings: any sanitizer report or hang; an answer other than 200, 307 (a trailing
// slash), 400, 404 or 422; an answer that is not JSON; a 422 whose detail is not a
// list of {loc, msg, type} objects; a 200 whose echoed values are not what the request
// held or break their constraints; a decoded model that does not decode again to the
// same JSON (to_json/from_json round trip).
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz_util.hpp"
#include "gatehouse/app.hpp"
#include "gatehouse/models.hpp"
#include "gatehouse/params.hpp"

namespace fuzz_params {

struct Tag {
  std::string name;
  std::optional<double> weight;
};
GATEHOUSE_MODEL(Tag, name, weight)

struct Item {
  std::int64_t id;
  std::string title;
  std::optional<bool> done;
  std::vector<std::string> labels;
  std::optional<std::vector<std::int32_t>> scores;
  std::optional<std::uint16_t> port;
};
GATEHOUSE_MODEL(Item, id, title, done, labels, scores, port)

}  // namespace fuzz_params

namespace {

namespace json = boost::json;
using fuzz_params::Item;

std::optional<std::string_view> lookup(const void* fields, std::string_view name) {
  const auto* cookie = static_cast<const std::string*>(fields);
  if (name.size() == 6 && (name[0] == 'C' || name[0] == 'c') && name.substr(1) == "ookie") {
    return std::string_view(*cookie);
  }
  if (name == "Content-Type" || name == "content-type") return std::string_view("application/json");
  return std::nullopt;
}

gatehouse::App& app() {
  static gatehouse::App* the_app = [] {
    auto* a = new gatehouse::App;
    a->post(
        "/items/{item_id}", {.name = "put_item"},
        [](std::int64_t item_id, std::optional<std::string> q, int limit, bool flag,
           std::optional<double> ratio, const std::vector<std::int64_t>& tag,
           std::optional<std::string> session, const Item& item) {
          json::array tags(tag.begin(), tag.end());
          return json::value{{"item_id", item_id},
                             {"q", q ? json::value(*q) : json::value(nullptr)},
                             {"limit", limit},
                             {"flag", flag},
                             {"ratio", ratio ? json::value(*ratio) : json::value(nullptr)},
                             {"tag", tags},
                             {"session", session ? json::value(*session) : json::value(nullptr)},
                             {"item", gatehouse::to_json(item)}};
        },
        gatehouse::Path<std::int64_t>("item_id"),
        gatehouse::Query<std::optional<std::string>>("q", {.min_length = 1, .max_length = 8}),
        gatehouse::Query<int>("limit", 10, {.ge = -5, .lt = 1000}),
        gatehouse::Query<bool>("flag", false),
        gatehouse::Query<std::optional<double>>("ratio", {.gt = -1.5, .le = 2}),
        gatehouse::Query<std::vector<std::int64_t>>("tag", std::vector<std::int64_t>{}, {.ge = 0}),
        gatehouse::Cookie<std::optional<std::string>>("session"), gatehouse::JsonBody<Item>());
    return a;
  }();
  return *the_app;
}

void check_validation_errors(const json::value& detail) {
  fuzz::require(detail.is_array() && !detail.as_array().empty(), "422 detail is not a list");
  for (const auto& e : detail.as_array()) {
    fuzz::require(e.is_object(), "422 error is not an object");
    const auto& o = e.as_object();
    fuzz::require(o.contains("loc") && o.at("loc").is_array(), "422 error without loc");
    fuzz::require(o.contains("msg") && o.at("msg").is_string(), "422 error without msg");
    fuzz::require(o.contains("type") && o.at("type").is_string(), "422 error without type");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);
  std::string_view parts[4];
  for (int i = 0; i < 3; ++i) {
    const auto nl = input.find('\n');
    parts[i] = input.substr(0, nl);
    input = nl == std::string_view::npos ? std::string_view{} : input.substr(nl + 1);
  }
  parts[3] = input;
  std::string segment(parts[0]);
  for (auto& c : segment) {
    if (c == '?') c = '_';  // the query string is the next line's
  }
  const std::string query(parts[1]);
  const std::string cookie(parts[2]);
  const std::string body(parts[3]);

  // The parsers on their own.
  const auto params = gatehouse::parse_query_string(query);
  for (const auto& [k, v] : params) {
    fuzz::require(fuzz::valid_utf8(k) && fuzz::valid_utf8(v), "query parameter is not UTF-8");
  }
  (void)gatehouse::parse_cookies(cookie);
  json::error_code ec;
  const auto parsed = json::parse(body, ec);
  if (!ec) {
    auto item = gatehouse::from_json<Item>(parsed);
    if (item) {
      const auto once = gatehouse::to_json(*item);
      auto again = gatehouse::from_json<Item>(once);
      fuzz::require(static_cast<bool>(again), "an encoded model does not decode");
      fuzz::require(gatehouse::to_json(*again) == once, "model round trip changed the value");
    } else {
      check_validation_errors(json::value(item.error()));
    }
  }

  // The whole route.
  const std::string path = "/items/" + segment;
  const std::string target = query.empty() ? path : path + "?" + query;
  gatehouse::Request request("POST", target, path, body, &cookie, &lookup);
  const auto response = app().handle(request);
  const auto s = response.status;
  fuzz::require(s == 200 || s == 307 || s == 400 || s == 404 || s == 422, "unexpected status");
  if (s == 307) {  // a trailing slash: Starlette's redirect to the path without it
    fuzz::require(!path.empty() && path.back() == '/', "a redirect for a path without a '/'");
    return 0;
  }
  const auto answer = json::parse(response.body, ec);
  fuzz::require(!ec, "the answer is not JSON");
  if (s == 422) check_validation_errors(answer.as_object().at("detail"));
  if (s == 200) {
    const auto& o = answer.as_object();
    fuzz::require(o.at("item").is_object(), "no item in a 200");
    if (const auto* q = gatehouse::find_param(params, "q")) {
      fuzz::require(o.at("q") == json::value(*q), "q is not what was sent");
    }
    fuzz::require(o.at("limit").as_int64() >= -5 && o.at("limit").as_int64() < 1000,
                  "limit outside its bounds");
    std::size_t tags = 0;
    for (const auto& [k, v] : params) tags += k == "tag";
    fuzz::require(o.at("tag").as_array().size() == tags, "a tag went missing");
    for (const auto& t : o.at("tag").as_array()) fuzz::require(t.as_int64() >= 0, "tag below 0");
  }
  return 0;
}
