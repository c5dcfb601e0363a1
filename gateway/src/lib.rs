//! `mosaic-gateway`: the HTTP gateway that will stream Mosaic files to browsers (Range,
//! ETag, caching, public sites). Nothing is built here yet; the crate exists so the
//! workspace has its final shape and its dependencies already point the right way
//! (gateway → node).
