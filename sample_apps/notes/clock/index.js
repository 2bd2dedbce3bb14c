// The clock micro: plain Node.js, no npm packages. Streams the time with Server-Sent Events.
const http = require("http");

const server = http.createServer((req, res) => {
  if (req.url.startsWith("/events")) {
    res.writeHead(200, { "Content-Type": "text/event-stream", "Cache-Control": "no-cache" });
    const tick = () => res.write(`data: ${new Date().toISOString()}\n\n`);
    tick();
    const timer = setInterval(tick, 1000);
    req.on("close", () => clearInterval(timer));
    return;
  }
  res.writeHead(200, { "Content-Type": "application/json" });
  res.end(JSON.stringify({ now: new Date().toISOString(), micro: process.env.DETA_SPACE_APP_MICRO_NAME }));
});

server.listen(Number(process.env.PORT), "127.0.0.1", () => {
  console.log(`clock listening on ${process.env.PORT}`);
});
process.on("SIGTERM", () => server.close(() => process.exit(0)));
