-- wrk script: Plausible-style page views from varied clients.
-- WRK_CLOSE=1 asks for a new connection per request (Connection: close).
local close = os.getenv("WRK_CLOSE") == "1"
local uas = {
  "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36",
  "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1",
  "Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0",
}
local refs = {"https://t.co/abc", "https://www.google.nl/", "", "https://www.linkedin.com/feed/"}
local n = 0
request = function()
  n = n + 1
  local body = '{"name":"pageview","url":"https://example.com/p/' .. (n % 50) .. '?utm_source=nl","domain":"example.com","referrer":"' .. refs[n % 4 + 1] .. '"}'
  local headers = {
    ["Content-Type"] = "application/json",
    ["User-Agent"] = uas[n % 3 + 1],
    ["X-Forwarded-For"] = "203.0." .. (n % 250) .. "." .. (n % 200 + 1),
  }
  if close then headers["Connection"] = "close" end
  return wrk.format("POST", "/api/event", headers, body)
end
