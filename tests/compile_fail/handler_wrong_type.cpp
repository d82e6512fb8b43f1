// expect: the route handler cannot be called with the values of the route's dependencies
// A handler parameter whose type is not the dependency's (Query<int> gives an int).
#include <gatehouse/gatehouse.hpp>

int main() {
  gatehouse::App app;
  app.get(
      "/items/", {.name = "list"}, [](const std::vector<std::string>& q) { return q.size(); },
      gatehouse::Query<int>("q"));
}
