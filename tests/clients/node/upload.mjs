// Uploads one image through apollo-upload-client and @apollo/client, the way a storefront
// or a merchant tool in JavaScript would, then reads the product's images back.
//
//   node upload.mjs URL TOKEN SKU FILE
//
// URL is the GraphQL endpoint (http://127.0.0.1:8000/graphql), TOKEN a write token, SKU an
// existing product, FILE an image on disk. Prints one JSON object on stdout:
//   {"upload": <uploadImage payload>, "product": <product with its images>}
// Exit status: 0 on success, 1 when the upload reported userErrors or the request failed,
// 2 on bad arguments.
//
// apollo-upload-client 19 (the newest whose engines accept Node 20) exports the link as the
// class UploadHttpLink; earlier majors called it createUploadLink.

import { readFile } from "node:fs/promises";
import { basename } from "node:path";
import { ApolloClient, gql, InMemoryCache } from "@apollo/client";
import UploadHttpLink from "apollo-upload-client/UploadHttpLink.mjs";

const UPLOAD = gql`
  mutation Upload($input: UploadImageInput!) {
    uploadImage(input: $input) {
      image {
        id
        url
        position
        isMain
        width
        height
        mimeType
        fileSize
        checksum
        source
      }
      userErrors {
        field
        code
        message
      }
    }
  }
`;

const PRODUCT_IMAGES = gql`
  query ProductImages($sku: String!) {
    product(sku: $sku) {
      id
      sku
      mainImage {
        id
      }
      images {
        id
        url
        position
        isMain
        width
        height
        mimeType
        fileSize
        checksum
      }
    }
  }
`;

const MIME_TYPES = {
  ".gif": "image/gif",
  ".jpeg": "image/jpeg",
  ".jpg": "image/jpeg",
  ".png": "image/png",
  ".webp": "image/webp",
};

function mimeType(path) {
  const dot = path.lastIndexOf(".");
  const ext = dot < 0 ? "" : path.slice(dot).toLowerCase();
  // The gateway judges the format from the bytes; the type only labels the part.
  return MIME_TYPES[ext] ?? "application/octet-stream";
}

async function main(argv) {
  if (argv.length !== 4) {
    console.error("usage: node upload.mjs URL TOKEN SKU FILE");
    return 2;
  }
  const [uri, token, sku, path] = argv;

  const client = new ApolloClient({
    cache: new InMemoryCache(),
    link: new UploadHttpLink({
      uri,
      headers: { Authorization: `Bearer ${token}` },
    }),
  });

  // Node 20 has File, Blob, FormData and fetch built in; apollo-upload-client extracts
  // File/Blob instances from the variables into a GraphQL multipart request.
  const file = new File([await readFile(path)], basename(path), { type: mimeType(path) });

  const uploaded = await client.mutate({
    mutation: UPLOAD,
    variables: { input: { productSku: sku, file } },
  });
  const payload = uploaded.data.uploadImage;

  const read = await client.query({
    query: PRODUCT_IMAGES,
    variables: { sku },
    fetchPolicy: "network-only",
  });

  console.log(JSON.stringify({ upload: payload, product: read.data.product }, null, 2));
  return payload.userErrors.length === 0 ? 0 : 1;
}

try {
  process.exitCode = await main(process.argv.slice(2));
} catch (error) {
  // Apollo Client 4 rejects on GraphQL errors (CombinedGraphQLErrors) and network failures.
  console.error(`upload.mjs: ${error?.name ?? "Error"}: ${error?.message ?? error}`);
  if (error?.errors) console.error(JSON.stringify(error.errors, null, 2));
  process.exitCode = 1;
}
