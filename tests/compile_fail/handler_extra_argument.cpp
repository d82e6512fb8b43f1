// expect: the route handler cannot be called with the values of the route's dependencies
// A handler parameter with no dependency giving it a value.
#include <gatehouse/gatehouse.hpp>

int main() {
  gatehouse::App app;
  app.get(
      "/items/{id}", {.name = "get"},
      [](int id, const std::string& q) {
        return boost::json::value{{"id", id}, {"q", q}};
      },
      gatehouse::Path<int>("id"));
}
