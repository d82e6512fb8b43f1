// Dependencies and security requirements, after FastAPI's Depends/Security.
//
// A Dependency<T> is a typed value that knows how to produce a T for a request,
// possibly from other dependencies. Requirements (Depends(dep), Security(dep, scopes))
// are edges of a tree that each route declares. When a route is registered, the tree
// is bound once: every dependency learns the scopes the chain above it requires
// (SecurityScopes, outer first, as FastAPI accumulates them), and the route learns
// which security schemes and body fields it uses, which is all the OpenAPI document
// needs. Per request, the bound resolvers run in declaration order; an HTTP error
// stops the chain at once, while validation errors (422) are gathered from every
// dependency first, as FastAPI does.
#pragma once

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>

#include <algorithm>
#include <array>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "gatehouse/form.hpp"
#include "gatehouse/http.hpp"
#include "gatehouse/model.hpp"
#include "gatehouse/scopes.hpp"

namespace gatehouse {

// Per-request state handed to resolvers.
class RequestContext {
 public:
  explicit RequestContext(const Request& request) : request_(request) {}
  [[nodiscard]] const Request& request() const noexcept { return request_; }
  // The parsed form body; empty unless the route declared a form body.
  [[nodiscard]] const FormData& form() const noexcept { return form_; }
  void set_form(FormData form) { form_ = std::move(form); }
  // The path parameters the route's template matched, percent-decoded, in order.
  [[nodiscard]] const Params& path_params() const noexcept { return path_params_; }
  void set_path_params(Params params) { path_params_ = std::move(params); }
  // The query string's fields (parse_query_string), parsed on first use.
  [[nodiscard]] const Params& query_params() {
    if (!query_params_) query_params_ = parse_query_string(request_.query());
    return *query_params_;
  }
  // The first Cookie header's cookies (parse_cookies), parsed on first use.
  [[nodiscard]] const Params& cookies() {
    if (!cookies_) cookies_ = parse_cookies(request_.header("Cookie").value_or(""));
    return *cookies_;
  }
  // Holds this request's answer (whatever it is) until `when`, without keeping the
  // thread that computed it: e.g. so that every failed login takes equally long.
  void respond_not_before(std::chrono::steady_clock::time_point when) {
    if (when > not_before_) not_before_ = when;
  }
  [[nodiscard]] std::chrono::steady_clock::time_point not_before() const noexcept {
    return not_before_;
  }

  // Values of dependencies used more than once in a route, by cache slot.
  [[nodiscard]] const void* cached(std::size_t slot) const {
    return slot < cache_.size() ? cache_[slot].get() : nullptr;
  }
  void store(std::size_t slot, std::shared_ptr<const void> value) {
    if (cache_.size() <= slot) cache_.resize(slot + 1);
    cache_[slot] = std::move(value);
  }

 private:
  const Request& request_;
  FormData form_;
  Params path_params_;
  std::optional<Params> query_params_;
  std::optional<Params> cookies_;
  std::chrono::steady_clock::time_point not_before_{};
  std::vector<std::shared_ptr<const void>> cache_;
};

namespace detail {
// A dependency's place in a route's per-request cache: FastAPI resolves a dependency
// once per request for each set of scopes (use_cache), however often it is required.
struct CacheSlot {
  std::size_t index = 0;
  int uses = 0;
};
}  // namespace detail

// An OpenAPI security scheme: its name in components.securitySchemes and its object.
struct SecuritySchemeInfo {
  std::string name;
  boost::json::object openapi;
};

// What binding a route's dependency tree found out, for OpenAPI and for the server.
class Binding {
 public:
  struct SecurityUse {
    std::shared_ptr<const SecuritySchemeInfo> scheme;
    std::vector<std::string> scopes;
  };
  // Records that the tree reached `scheme` with these scopes. As FastAPI's
  // get_flat_dependant(skip_repeats=True), a repeat of the same scheme with the same
  // set of scopes is listed once.
  void add_security(std::shared_ptr<const SecuritySchemeInfo> scheme,
                    std::vector<std::string> scopes) {
    auto key = [](const SecurityUse& u) {
      std::vector<std::string> sorted = u.scopes;
      std::sort(sorted.begin(), sorted.end());
      sorted.erase(std::unique(sorted.begin(), sorted.end()), sorted.end());
      return std::make_pair(u.scheme->name, sorted);
    };
    SecurityUse use{std::move(scheme), std::move(scopes)};
    for (const auto& existing : security_) {
      if (key(existing) == key(use)) return;
    }
    security_.push_back(std::move(use));
  }
  void add_form_fields(const std::vector<Field>& fields) {
    form_fields_.insert(form_fields_.end(), fields.begin(), fields.end());
  }
  // A path, query, header or cookie parameter, as OpenAPI lists it (in declaration
  // order; FastAPI 0.92 lists a parameter declared twice twice).
  struct Parameter {
    std::string name;
    std::string in;  // "path", "query", "header", "cookie"
    bool required = false;
    boost::json::object schema;
    std::string description;
  };
  void add_parameter(Parameter parameter) { parameters_.push_back(std::move(parameter)); }
  // Declares the route's JSON request body. A route has one: a second, or a JSON body
  // beside a form body, is a declaration error (std::logic_error when the route is added).
  void set_json_body(Model model, bool required);
  // The route's path and its template's parameter names, set before the tree is bound
  // (a Path<T> naming no parameter of the template is a declaration error).
  void set_route(std::string path, std::vector<std::string> path_names) {
    route_path_ = std::move(path);
    path_names_ = std::move(path_names);
  }
  [[nodiscard]] const std::string& route_path() const noexcept { return route_path_; }
  [[nodiscard]] const std::vector<std::string>& path_names() const noexcept { return path_names_; }
  // Declares that resolving this tree may block (password hashing): the route then
  // runs on the worker pool whatever its RouteOptions say.
  void set_blocking() noexcept { blocking_ = true; }
  [[nodiscard]] bool blocking() const noexcept { return blocking_; }
  [[nodiscard]] const std::vector<Parameter>& parameters() const noexcept { return parameters_; }
  [[nodiscard]] const std::optional<Model>& json_body() const noexcept { return json_body_; }
  [[nodiscard]] bool json_body_required() const noexcept { return json_body_required_; }
  // True when a request can fail validation (422): FastAPI then documents the 422.
  [[nodiscard]] bool validates() const noexcept {
    return has_form_body() || !parameters_.empty() || json_body_.has_value();
  }
  [[nodiscard]] const std::vector<SecurityUse>& security() const noexcept { return security_; }
  [[nodiscard]] const std::vector<Field>& form_fields() const noexcept { return form_fields_; }
  [[nodiscard]] bool has_form_body() const noexcept { return !form_fields_.empty(); }

  // The cache slot of dependency `id` bound with these scopes in this route.
  std::shared_ptr<detail::CacheSlot> cache_slot(const void* id,
                                                const std::vector<std::string>& scopes) {
    std::vector<std::string> sorted = scopes;
    std::sort(sorted.begin(), sorted.end());
    sorted.erase(std::unique(sorted.begin(), sorted.end()), sorted.end());
    auto& slot = slots_[{id, std::move(sorted)}];
    if (!slot) {
      slot = std::make_shared<detail::CacheSlot>();
      slot->index = slots_.size() - 1;
    }
    ++slot->uses;
    return slot;
  }

 private:
  std::map<std::pair<const void*, std::vector<std::string>>, std::shared_ptr<detail::CacheSlot>>
      slots_;
  std::vector<SecurityUse> security_;
  std::vector<Field> form_fields_;
  std::vector<Parameter> parameters_;
  std::optional<Model> json_body_;
  bool json_body_required_ = false;
  std::string route_path_;
  std::vector<std::string> path_names_;
  bool blocking_ = false;
};

template <class T>
class Dependency {
 public:
  using value_type = T;
  using Resolver = std::function<Outcome<T>(RequestContext&)>;
  using Binder = std::function<Resolver(const SecurityScopes&, Binding&)>;

  // `rank` orders validation errors as FastAPI's solve_dependencies does: those of
  // sub-dependencies (0) first, then path (1), query (2), header (3), cookie (4) and
  // body (5) parameters.
  explicit Dependency(Binder binder, int rank = 0)
      : binder_(std::make_shared<const Binder>(std::move(binder))), rank_(rank) {}

  // Binds this dependency at a place in a route's tree where `scopes` are required.
  [[nodiscard]] Resolver bind(const SecurityScopes& scopes, Binding& binding) const {
    return (*binder_)(scopes, binding);
  }
  [[nodiscard]] int rank() const noexcept { return rank_; }

 private:
  std::shared_ptr<const Binder> binder_;
  int rank_ = 0;
};

// An edge of the dependency tree: a dependency and the scopes this edge adds.
template <class T>
struct Requirement {
  using value_type = T;
  Dependency<T> dependency;
  std::vector<std::string> scopes;
};

template <class T>
Requirement<T> Security(const Dependency<T>& dependency, std::vector<std::string> scopes = {}) {
  return Requirement<T>{dependency, std::move(scopes)};
}
template <class T>
Requirement<T> Depends(const Dependency<T>& dependency) {
  return Requirement<T>{dependency, {}};
}

namespace detail {

template <class T>
struct is_outcome : std::false_type {};
template <class T>
struct is_outcome<Result<T, HttpException>> : std::true_type {};

// Appends the 422 error objects of `more` to `into`.
void merge_validation(std::optional<HttpException>& into, HttpException more);

// Calls fn with the optional leading context argument it asks for.
template <class F, class... Ts>
decltype(auto) invoke_dependency(const F& fn, RequestContext& ctx, const SecurityScopes& scopes,
                                 const Ts&... values) {
  if constexpr (std::is_invocable_v<const F&, const SecurityScopes&, RequestContext&,
                                    const Ts&...>) {
    return fn(scopes, ctx, values...);
  } else if constexpr (std::is_invocable_v<const F&, const SecurityScopes&, const Ts&...>) {
    return fn(scopes, values...);
  } else if constexpr (std::is_invocable_v<const F&, RequestContext&, const Ts&...>) {
    return fn(ctx, values...);
  } else {
    static_assert(std::is_invocable_v<const F&, const Ts&...>,
                  "a dependency function takes ([const SecurityScopes&], [RequestContext&], "
                  "the values of its requirements...)");
    return fn(values...);
  }
}

template <class T, class F, class... Ts>
class Composite {
 public:
  Composite(F fn, SecurityScopes scopes, std::tuple<typename Dependency<Ts>::Resolver...> subs,
            std::shared_ptr<CacheSlot> slot, std::array<int, sizeof...(Ts)> ranks)
      : fn_(std::move(fn)),
        scopes_(std::move(scopes)),
        subs_(std::move(subs)),
        slot_(std::move(slot)),
        ranks_(ranks) {}

  Outcome<T> operator()(RequestContext& ctx) const {
    if (slot_->uses < 2) return resolve(ctx);
    if (const void* hit = ctx.cached(slot_->index)) return *static_cast<const T*>(hit);
    auto r = resolve(ctx);
    if (r) ctx.store(slot_->index, std::make_shared<const T>(*r));
    return r;
  }

 private:
  Outcome<T> resolve(RequestContext& ctx) const {
    std::tuple<std::optional<Ts>...> values;
    std::array<std::optional<HttpException>, sizeof...(Ts) + 1> invalid;
    std::optional<HttpException> stop;
    resolve_all(ctx, values, invalid, stop, std::index_sequence_for<Ts...>{});
    if (stop) return Err{std::move(*stop)};
    std::optional<HttpException> validation;
    for (int rank = 0; rank <= 5; ++rank) {
      for (std::size_t i = 0; i < sizeof...(Ts); ++i) {
        if (ranks_[i] == rank && invalid[i]) merge_validation(validation, std::move(*invalid[i]));
      }
    }
    if (validation) return Err{std::move(*validation)};
    return std::apply(
        [&](auto&... v) -> Outcome<T> {
          using R = decltype(invoke_dependency(fn_, ctx, scopes_, *v...));
          if constexpr (is_outcome<std::remove_cvref_t<R>>::value) {
            return invoke_dependency(fn_, ctx, scopes_, *v...);
          } else {
            return T(invoke_dependency(fn_, ctx, scopes_, *v...));
          }
        },
        values);
  }

  using Invalid = std::array<std::optional<HttpException>, sizeof...(Ts) + 1>;
  template <std::size_t... I>
  void resolve_all(RequestContext& ctx, std::tuple<std::optional<Ts>...>& values, Invalid& invalid,
                   std::optional<HttpException>& stop, std::index_sequence<I...>) const {
    (resolve_one<I>(ctx, values, invalid, stop), ...);
  }
  template <std::size_t I>
  void resolve_one(RequestContext& ctx, std::tuple<std::optional<Ts>...>& values, Invalid& invalid,
                   std::optional<HttpException>& stop) const {
    if (stop) return;
    auto r = std::get<I>(subs_)(ctx);
    if (r) {
      std::get<I>(values).emplace(std::move(*r));
    } else if (r.error().validation) {
      invalid[I].emplace(std::move(r).error());
    } else {
      stop.emplace(std::move(r).error());
    }
  }

  F fn_;
  SecurityScopes scopes_;
  std::tuple<typename Dependency<Ts>::Resolver...> subs_;
  std::shared_ptr<CacheSlot> slot_;
  std::array<int, sizeof...(Ts)> ranks_;
};

}  // namespace detail

// Makes a dependency producing T from a function and the requirements it needs.
// `fn` takes, in this order: optionally `const SecurityScopes&` (the scopes required
// from the route down to here), optionally `RequestContext&`, then one `const X&` per
// requirement. It returns T or Outcome<T>.
template <class T, class F, class... Ts>
Dependency<T> dependency(F fn, Requirement<Ts>... requirements) {
  auto id = std::make_shared<const char>('d');  // this dependency's identity
  return Dependency<T>(
      [fn = std::move(fn), id, requirements...](const SecurityScopes& scopes, Binding& binding) {
        auto slot = binding.cache_slot(id.get(), scopes.scopes());
        std::tuple<typename Dependency<Ts>::Resolver...> subs{
            requirements.dependency.bind(scopes.plus(requirements.scopes), binding)...};
        return typename Dependency<T>::Resolver(detail::Composite<T, F, Ts...>(
            fn, scopes, std::move(subs), std::move(slot), {requirements.dependency.rank()...}));
      });
}

// The client's address, as a dependency: FastAPI's `request.client.host`. See
// Request::client_host() for how a trusted proxy's X-Forwarded-For is used.
struct ClientAddress {
  std::string host;  // "203.0.113.7", "2001:db8::1"; empty when unknown

  static Dependency<ClientAddress> dependency();
};

}  // namespace gatehouse
