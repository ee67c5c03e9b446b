// One real Yjs client (yjs + y-websocket, unchanged) of a livespace note, driven by a test
// over stdin/stdout, one JSON object a line.
//   node client.mjs <base ws url> <workspace id> <note id> <token> [name] [color]
// Commands: {"op": "insert", "index", "text"}, {"op": "delete", "index", "length"},
// {"op": "disconnect"}, {"op": "connect"}, {"op": "text"}, {"op": "cursor", "index"},
// {"op": "peers"}, {"op": "quit"}. Each gets {"reply": op, "text", "synced"}; events
// {"event": "sync" | "status" | "close", ...} come as they happen.
import readline from 'node:readline'
import WebSocket from 'ws'
import { WebsocketProvider } from 'y-websocket'
import * as Y from 'yjs'

const [base, workspace, note, token, name = 'anon', color = '#3366ff'] = process.argv.slice(2)
const doc = new Y.Doc()
const text = doc.getText('body')
const out = (obj) => process.stdout.write(JSON.stringify(obj) + '\n')

const provider = new WebsocketProvider(`${base}/ws/workspace/${workspace}/notes`, note, doc, {
  params: { token },
  WebSocketPolyfill: WebSocket,
  disableBc: true, // two clients in one machine must meet through the server only
  maxBackoffTime: 500
})
provider.awareness.setLocalStateField('user', { name, color })
provider.on('sync', (synced) => out({ event: 'sync', synced }))
provider.on('status', ({ status }) => out({ event: 'status', status }))
provider.on('connection-close', (event) => out({ event: 'close', code: event?.code ?? null }))

const peers = () => [...provider.awareness.getStates().entries()]
  .filter(([id]) => id !== doc.clientID)
  .map(([id, state]) => ({ id, ...state }))

const commands = {
  insert: ({ index, text: t }) => text.insert(index, t),
  delete: ({ index, length }) => text.delete(index, length),
  disconnect: () => provider.disconnect(),
  connect: () => provider.connect(),
  text: () => {},
  cursor: ({ index }) => {
    const at = Y.relativePositionToJSON(Y.createRelativePositionFromTypeIndex(text, index))
    provider.awareness.setLocalStateField('cursor', { anchor: at, head: at })
  },
  peers: () => ({ peers: peers() }),
  quit: () => { provider.destroy(); setTimeout(() => process.exit(0), 50) }
}

readline.createInterface({ input: process.stdin }).on('line', (line) => {
  const cmd = JSON.parse(line)
  const extra = commands[cmd.op](cmd) || {}
  out({ reply: cmd.op, text: text.toString(), synced: provider.synced, ...extra })
})
