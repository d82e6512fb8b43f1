// Building responses: JSON bodies serialised compactly, as Starlette's JSONResponse
// does, and HttpException turned into FastAPI's {"detail": ...} answer.
#include <boost/json/serialize.hpp>

#include "gatehouse/http.hpp"

namespace gatehouse {

Response Response::json(unsigned status, const boost::json::value& body, Headers headers) {
  Response r;
  r.status = status;
  r.body = boost::json::serialize(body);
  r.headers = std::move(headers);
  return r;
}

Response Response::html(std::string body) {
  Response r;
  r.body = std::move(body);
  r.content_type = "text/html; charset=utf-8";
  return r;
}

HttpException HttpException::validation_error(boost::json::array errors) {
  HttpException e(422, std::move(errors));
  e.validation = true;
  return e;
}

Response HttpException::to_response() const {
  boost::json::object body;
  body["detail"] = detail;
  return Response::json(status, body, headers);
}

}  // namespace gatehouse
