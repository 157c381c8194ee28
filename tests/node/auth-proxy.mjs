// A loopback proxy for tests: forwards every request to the HumanPing server at TARGET and adds
// `Authorization: Bearer KEY` when the request carries none, for clients that cannot send
// headers (the conformance suite). Host and Origin pass through unchanged, so the server's
// DNS-rebinding checks see what the client sent. Prints "listening PORT" once ready.
//
//     node auth-proxy.mjs http://127.0.0.1:8787 hp_test_… 
import http from "node:http";

const [target, key] = process.argv.slice(2);
if (!target || !key) {
  console.error("usage: node auth-proxy.mjs TARGET_URL API_KEY");
  process.exit(2);
}

const server = http.createServer((req, res) => {
  const headers = { ...req.headers };
  if (!headers.authorization) headers.authorization = `Bearer ${key}`;
  const upstream = http.request(new URL(req.url, target), { method: req.method, headers }, (answer) => {
    res.writeHead(answer.statusCode ?? 502, answer.headers);
    answer.pipe(res);
  });
  upstream.on("error", (error) => {
    if (!res.headersSent) res.writeHead(502, { "content-type": "text/plain" });
    res.end(`proxy: ${error.message}`);
  });
  res.on("close", () => upstream.destroy());
  req.pipe(upstream);
});

server.listen(0, "127.0.0.1", () => {
  console.log(`listening ${server.address().port}`);
});
