// The simplest SMPP-to-SMSGate relay one would write with node-smpp: every submit_sm becomes
// one POST /messages with the bind's credentials over a keep-alive connection pool, and its
// answer the submit_sm_resp. No queue, no receipts, no checks beyond what the gateway does:
// the baseline the relay_compare benchmark measures the server against, on the same gateway.
//
// node relay.js SMPP_PORT GATEWAY_BASE_URL  (prints "listening" once it accepts binds)

'use strict';

const http = require('http');
const smpp = require('smpp');

const [port, base] = process.argv.slice(2);
const agent = new http.Agent({ keepAlive: true, maxSockets: 1024 });
let sequenceOfIds = 0;

function post(path, auth, body) {
  return new Promise((resolve) => {
    const request = http.request(base + path, {
      method: 'POST',
      agent,
      auth,
      headers: { 'Content-Type': 'application/json' },
    }, (response) => {
      response.resume();
      response.on('end', () => resolve(response.statusCode));
    });
    request.on('error', () => resolve(0));
    request.end(JSON.stringify(body));
  });
}

const server = smpp.createServer((session) => {
  let auth = null;
  session.on('bind_transceiver', (pdu) => {
    auth = `${pdu.system_id}:${pdu.password}`;
    session.send(pdu.response());
  });
  session.on('enquire_link', (pdu) => session.send(pdu.response()));
  session.on('unbind', (pdu) => {
    session.send(pdu.response());
    session.close();
  });
  session.on('submit_sm', async (pdu) => {
    const id = `r${process.pid}-${sequenceOfIds++}`;
    const text = Buffer.isBuffer(pdu.short_message.message)
      ? pdu.short_message.message.toString('latin1')
      : pdu.short_message.message;
    const status = await post('/messages', auth, {
      id,
      textMessage: { text },
      phoneNumbers: [`+${pdu.destination_addr}`],
      withDeliveryReport: pdu.registered_delivery !== 0,
    });
    session.send(pdu.response(status === 202
      ? { message_id: id }
      : { command_status: smpp.ESME_RSYSERR }));
  });
  session.on('error', () => session.close());
});

server.listen(Number(port), '127.0.0.1', () => console.log('listening'));
