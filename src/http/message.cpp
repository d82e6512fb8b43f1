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

Response Response::deferred(std::shared_ptr<Later> later) {
  Response r;
  r.later = std::move(later);
  return r;
}

void Later::complete(Response response) {
  std::function<void(Response)> deliver;
  {
    std::lock_guard lock(mutex_);
    if (completed_) return;
    completed_ = true;
    if (!deliver_) {
      response_ = std::move(response);
      done_.notify_all();
      return;
    }
    deliver = std::move(deliver_);
  }
  deliver(std::move(response));
}

void Later::then(std::function<void(Response)> deliver) {
  std::optional<Response> ready;
  {
    std::lock_guard lock(mutex_);
    if (!response_) {
      deliver_ = std::move(deliver);
      return;
    }
    ready = std::move(response_);
    response_.reset();
  }
  deliver(std::move(*ready));
}

Response Later::wait() {
  std::unique_lock lock(mutex_);
  done_.wait(lock, [this] { return response_.has_value(); });
  Response r = std::move(*response_);
  response_.reset();
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
