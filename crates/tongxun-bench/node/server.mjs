// The Node socket.io peer of tongxun's benchmarks: the same two handlers as the Rust peers,
// socket.io's default options. Usage: node server.mjs [--port N] (0 picks a free port).
import { createServer } from "node:http";
import { Server } from "socket.io";

const at = process.argv.indexOf("--port");
const port = at > 0 ? Number(process.argv[at + 1]) : 0;

const httpServer = createServer();
const io = new Server(httpServer);

io.on("connection", (socket) => {
  socket.on("echo", (data, ack) => {
    if (typeof ack === "function") ack(data);
  });
  socket.on("bcast", (data) => {
    socket.broadcast.emit("tick", data);
  });
});

httpServer.listen(port, "127.0.0.1", () => {
  console.log(`listening on http://127.0.0.1:${httpServer.address().port}`);
});

// The bench closes our stdin when it is done with us (or when it dies).
process.stdin.on("end", () => process.exit(0));
process.stdin.resume();
