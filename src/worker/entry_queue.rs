//! The entry queue: a bounded cross-process queue that producers put entries into and buyers
//! take them from, as `multiprocessing.Queue(maxsize)` (and `JoinableQueue`) in the lesson.
//!
//! It is a process of its own that holds the entries and answers requests on a datagram
//! socket. A blocking put and a take on an empty queue are answered later, when they can be;
//! a non-blocking put on a full queue is answered `full` at once and the entry is dropped.
//! When every producer has said it is done and the queue is empty, takes are answered
//! `closed`: the sentinel of the lesson, without a sentinel value. The queue records every
//! entry it hands out, so that entries left in it are counted as unconsumed.

use std::collections::{HashMap, HashSet, VecDeque};
use std::io;
use std::os::unix::net::{SocketAddr, UnixDatagram};

use anyhow::{Result, bail};

use crate::history::{Kind, Outcome, Recorder};
use crate::plan::{TrialPlan, ready_then_wait_for_gate};
use crate::sys::ipc::{self, Server};

/// The entry queue's abstract socket.
pub fn socket(plan: &TrialPlan) -> String {
    plan.name("queue")
}

const PUT: u8 = b'P';
const TAKE: u8 = b'G';
const DONE: u8 = b'D';
const TASK_DONE: u8 = b'T';
const JOIN: u8 = b'J';

const OK: u8 = b'O';
const FULL: u8 = b'F';
const ENTRY: u8 = b'E';
const CLOSED: u8 = b'C';

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

fn message(tag: u8, body: &[u8]) -> Vec<u8> {
    let mut m = Vec::with_capacity(1 + body.len());
    m.push(tag);
    m.extend_from_slice(body);
    m
}

fn ask(socket: &UnixDatagram, request: &[u8]) -> io::Result<([u8; 16], usize)> {
    socket.send(request)?;
    let mut reply = [0u8; 16];
    let n = ipc::recv(socket, &mut reply)?;
    if n == 0 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "empty reply from the entry queue",
        ));
    }
    Ok((reply, n))
}

/// What a buyer's take found.
pub enum Take {
    Entry(u64),
    Closed,
}

/// Takes one entry, waiting while the queue is empty and producers are still at work.
pub fn take(socket: &UnixDatagram, buyer: u32) -> io::Result<Take> {
    let (reply, n) = ask(socket, &message(TAKE, &buyer.to_le_bytes()))?;
    match reply[0] {
        ENTRY if n == 9 => Ok(Take::Entry(u64_at(&reply, 1))),
        CLOSED => Ok(Take::Closed),
        other => Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("unexpected reply {other} to a take"),
        )),
    }
}

/// Tells the queue an entry has been processed, as `JoinableQueue.task_done()`.
pub fn task_done(socket: &UnixDatagram, entry: u64) -> io::Result<()> {
    socket.send(&message(TASK_DONE, &entry.to_le_bytes())).map(drop)
}

/// Puts an entry; `true` if it is in the queue, `false` if it was dropped because the queue
/// was full and `blocking` was off.
pub fn put(socket: &UnixDatagram, entry: u64, blocking: bool) -> io::Result<bool> {
    let mut body = entry.to_le_bytes().to_vec();
    body.push(blocking as u8);
    let (reply, _) = ask(socket, &message(PUT, &body))?;
    Ok(reply[0] == OK)
}

/// Says that this producer will put nothing more.
pub fn done(socket: &UnixDatagram, producer: u32) -> io::Result<()> {
    socket.send(&message(DONE, &producer.to_le_bytes())).map(drop)
}

/// Waits until every entry this producer put has been processed, as `JoinableQueue.join()`.
pub fn join(socket: &UnixDatagram, producer: u32) -> io::Result<()> {
    ask(socket, &message(JOIN, &producer.to_le_bytes())).map(drop)
}

/// The entry id of a producer's `seq`-th entry.
pub fn entry_id(producer: u32, seq: u32) -> u64 {
    ((producer as u64) << 32) | seq as u64
}

struct Queue<'a> {
    socket: &'a UnixDatagram,
    recorder: &'a mut Recorder,
    capacity: usize,
    producers: u32,
    entries: VecDeque<u64>,
    waiting_puts: VecDeque<(SocketAddr, u64)>,
    waiting_takes: VecDeque<SocketAddr>,
    done: HashSet<u32>,
    /// Per producer: entries put and not yet marked done by a buyer.
    outstanding: HashMap<u32, u64>,
    joiners: HashMap<u32, SocketAddr>,
}

pub fn run(plan: &TrialPlan, recorder: &mut Recorder) -> Result<()> {
    let Some(producers) = &plan.producers else {
        bail!("an entry queue without producers")
    };
    let socket = ipc::bind(&socket(plan))?;
    ready_then_wait_for_gate(recorder)?;
    let mut queue = Queue {
        socket: &socket,
        recorder,
        capacity: producers.queue_capacity as usize,
        producers: producers.count,
        entries: VecDeque::new(),
        waiting_puts: VecDeque::new(),
        waiting_takes: VecDeque::new(),
        done: HashSet::new(),
        outstanding: HashMap::new(),
        joiners: HashMap::new(),
    };
    ipc::serve(&socket, &mut queue)?;
    Ok(())
}

impl Server for Queue<'_> {
    fn handle(&mut self, from: &SocketAddr, m: &[u8]) -> io::Result<()> {
        match (m.first().copied(), m.len()) {
            (Some(PUT), 10) => self.put(from, u64_at(m, 1), m[9] != 0),
            (Some(TAKE), 5) => self.waiting_takes.push_back(from.clone()),
            (Some(DONE), 5) => {
                self.done.insert(u32_at(m, 1));
            }
            (Some(TASK_DONE), 9) => {
                let producer = (u64_at(m, 1) >> 32) as u32;
                let left = self.outstanding.entry(producer).or_default();
                *left = left.saturating_sub(1);
            }
            (Some(JOIN), 5) => {
                self.joiners.insert(u32_at(m, 1), from.clone());
            }
            _ => {} // not ours: ignore rather than die
        }
        Ok(())
    }

    /// Answers every request that can now be answered.
    fn settle(&mut self) -> io::Result<()> {
        self.hand_out()
    }
}

impl Queue<'_> {
    fn reply(&self, to: &SocketAddr, message: &[u8]) {
        // A requester that died has nobody left to read the answer; the rest go on.
        let _ = self.socket.send_to_addr(message, to);
    }

    fn put(&mut self, from: &SocketAddr, entry: u64, blocking: bool) {
        if self.entries.len() < self.capacity {
            self.admit(entry);
            self.reply(from, &[OK]);
        } else if blocking {
            self.waiting_puts.push_back((from.clone(), entry));
        } else {
            self.reply(from, &[FULL]);
        }
    }

    fn admit(&mut self, entry: u64) {
        self.entries.push_back(entry);
        *self.outstanding.entry((entry >> 32) as u32).or_default() += 1;
    }

    fn hand_out(&mut self) -> io::Result<()> {
        loop {
            let mut moved = false;
            while !self.entries.is_empty() && !self.waiting_takes.is_empty() {
                let (entry, to) = (
                    self.entries.pop_front().expect("not empty"),
                    self.waiting_takes.pop_front().expect("not empty"),
                );
                let Some(op) = self.recorder.begin(Kind::Take) else {
                    return Err(io::Error::other("history full: more hand-outs than entries"));
                };
                op.set_entry(entry);
                op.set_outcome(Outcome::Ok);
                op.stamp_end();
                self.reply(&to, &message(ENTRY, &entry.to_le_bytes()));
                moved = true;
            }
            while self.entries.len() < self.capacity
                && let Some((from, entry)) = self.waiting_puts.pop_front()
            {
                self.admit(entry);
                self.reply(&from, &[OK]);
                moved = true;
            }
            if !moved {
                break;
            }
        }
        let closed =
            self.done.len() as u32 >= self.producers && self.entries.is_empty() && self.waiting_puts.is_empty();
        if closed {
            while let Some(to) = self.waiting_takes.pop_front() {
                self.reply(&to, &[CLOSED]);
            }
        }
        let joined: Vec<u32> = self
            .joiners
            .keys()
            .copied()
            .filter(|p| self.done.contains(p) && self.outstanding.get(p).copied().unwrap_or(0) == 0)
            .collect();
        for p in joined {
            if let Some(to) = self.joiners.remove(&p) {
                self.reply(&to, &[JOIN]);
            }
        }
        Ok(())
    }
}
