"""A whole sync with a real Google Reader client library (google-reader,
by Miniflux's author), driven by tests/process/greader.rs in two halves so
the test can restart the edge between them:

    greader_sync.py start  BASE USER PASSWORD FEED N
    greader_sync.py finish BASE TOKEN STREAM CONTINUATION N

Each prints one JSON object on stdout for the test to check.
"""

import json
import sys

import google_reader as gr

READING_LIST = "user/-/state/com.google/reading-list"
READ = "user/-/state/com.google/read"
STARRED = "user/-/state/com.google/starred"


def ids_from(client, auth, stream, n, continuation=None, **filters):
    """Every id of a stream from `continuation` on, following continuations."""
    ids, pages = [], 0
    while True:
        page = client.get_stream_items_ids(
            auth, stream, limit=n, continuation=continuation, **filters
        )
        pages += 1
        ids.extend(ref.id for ref in page.item_refs)
        if not page.continuation:
            return ids, pages
        continuation = page.continuation


def start(base, user, password, feed, n):
    client = gr.Client(base)
    auth = client.login(user, password)
    csrf = client.get_token(auth)
    info = client.get_user_info(auth)
    added = client.quick_add_subscription(auth, csrf, feed)
    subscriptions = client.list_subscriptions(auth)
    tags = client.list_tags(auth)
    first = client.get_stream_items_ids(auth, READING_LIST, limit=n)
    return {
        "token": auth.AccessToken,
        "user": info.user_name,
        "added": {"num_results": added.num_results, "stream_id": added.stream_id},
        "subscriptions": [
            {"id": s.id, "url": s.url, "categories": [c.id for c in s.categories]}
            for s in subscriptions
        ],
        "tags": [t.id for t in tags],
        "first_ids": [ref.id for ref in first.item_refs],
        "continuation": first.continuation,
    }


def finish(base, token, stream, continuation, n):
    client = gr.Client(base)
    auth = gr.AuthToken(TokenType="GoogleLogin", AccessToken=token)
    csrf = client.get_token(auth)
    rest, _ = ids_from(client, auth, READING_LIST, n, continuation)
    everything, pages = ids_from(client, auth, READING_LIST, n)
    items = []
    for at in range(0, len(everything), 150):
        batch = [gr.get_long_item_id(int(i)) for i in everything[at : at + 150]]
        items.extend(client.get_stream_items_contents(auth, csrf, batch).items)
    long_ids = [gr.get_long_item_id(int(i)) for i in everything]
    client.edit_tags(auth, csrf, long_ids[:2], add_tags=[READ])
    client.edit_tags(auth, csrf, long_ids[2:3], add_tags=[STARRED])
    unread, _ = ids_from(client, auth, READING_LIST, n, exclude_target=READ)
    starred, _ = ids_from(client, auth, STARRED, n)
    client.mark_all_as_read(auth, csrf, stream)
    unread_after, _ = ids_from(client, auth, READING_LIST, n, exclude_target=READ)
    return {
        "rest_ids": rest,
        "all_ids": everything,
        "pages": pages,
        "items": [
            {
                "id": item.id,
                "title": item.title,
                "origin": item.origin.stream_id,
                "categories": item.categories,
                "has_content": bool(item.content.content or item.summary.content),
            }
            for item in items
        ],
        "unread": unread,
        "starred": starred,
        "unread_after_mark_all": unread_after,
    }


def main():
    step, args = sys.argv[1], sys.argv[2:]
    if step == "start":
        base, user, password, feed, n = args
        result = start(base, user, password, feed, int(n))
    else:
        base, token, stream, continuation, n = args
        result = finish(base, token, stream, continuation, int(n))
    json.dump(result, sys.stdout)


if __name__ == "__main__":
    main()
