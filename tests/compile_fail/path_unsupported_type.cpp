// expect: a Path/Query/Header/Cookie parameter is std::string, bool, an integer or floating-point
// type Path<T> with a T that no parameter converts to.
#include <gatehouse/gatehouse.hpp>

#include <map>

int main() {
  gatehouse::App app;
  app.get(
      "/items/{id}", {.name = "get"},
      [](const std::map<int, int>& id) { return boost::json::value(id.size()); },
      gatehouse::Path<std::map<int, int>>("id"));
}
