// The dependency engine's parts that need no template: a route's request body
// declaration, the merging of validation errors, and the client-address dependency.
#include "gatehouse/dependency.hpp"

#include <stdexcept>

namespace gatehouse {

void Binding::set_json_body(Model model, bool required) {
  if (json_body_ || has_form_body()) {
    throw std::logic_error("gatehouse: route " + route_path_ +
                           " declares a second request body (one JsonBody or one form per route)");
  }
  json_body_ = std::move(model);
  json_body_required_ = required;
}

namespace detail {
void merge_validation(std::optional<HttpException>& into, HttpException more) {
  if (!into) {
    into.emplace(std::move(more));
    return;
  }
  auto& dst = into->detail.as_array();
  for (auto& e : more.detail.as_array()) dst.push_back(std::move(e));
}
}  // namespace detail

Dependency<ClientAddress> ClientAddress::dependency() {
  return Dependency<ClientAddress>([](const SecurityScopes&, Binding&) {
    return Dependency<ClientAddress>::Resolver([](RequestContext& ctx) -> Outcome<ClientAddress> {
      return ClientAddress{std::string(ctx.request().client_host())};
    });
  });
}

}  // namespace gatehouse
