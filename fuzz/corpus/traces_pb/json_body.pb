{
 "resourceSpans": [
  {
   "resource": {
    "attributes": [
     {
      "key": "service.name",
      "value": {
       "stringValue": "support-bot"
      }
     },
     {
      "key": "service.version",
      "value": {
       "stringValue": "2.4.1"
      }
     },
     {
      "key": "deployment.environment.name",
      "value": {
       "stringValue": "production"
      }
     },
     {
      "key": "telemetry.sdk.language",
      "value": {
       "stringValue": "python"
      }
     },
     {
      "key": "telemetry.sdk.name",
      "value": {
       "stringValue": "opentelemetry"
      }
     },
     {
      "key": "telemetry.sdk.version",
      "value": {
       "stringValue": "1.27.0"
      }
     }
    ]
   },
   "schemaUrl": "https://opentelemetry.io/schemas/1.27.0",
   "scopeSpans": [
    {
     "scope": {
      "name": "openinference.instrumentation.langchain",
      "version": "0.1.28"
     },
     "spans": [
      {
       "attributes": [
        {
         "key": "openinference.span.kind",
         "value": {
          "stringValue": "CHAIN"
         }
        },
        {
         "key": "input.value",
         "value": {
          "stringValue": "How do I reset my router?"
         }
        },
        {
         "key": "output.value",
         "value": {
          "stringValue": "Hold the reset button for 10 seconds, then wait for the lights to settle."
         }
        },
        {
         "key": "session.id",
         "value": {
          "stringValue": "conv_9f2c1e"
         }
        },
        {
         "key": "user.id",
         "value": {
          "stringValue": "u-1842"
         }
        }
       ],
       "endTimeUnixNano": "1732017602840000000",
       "flags": 769,
       "kind": 1,
       "name": "RetrievalQA",
       "spanId": "00f067aa0ba902b7",
       "startTimeUnixNano": "1732017600000000000",
       "status": {
        "code": 1
       },
       "traceId": "4bf92f3577b34da6a3ce929d0e0e4736"
      },
      {
       "attributes": [
        {
         "key": "openinference.span.kind",
         "value": {
          "stringValue": "RETRIEVER"
         }
        },
        {
         "key": "input.value",
         "value": {
          "stringValue": "How do I reset my router?"
         }
        },
        {
         "key": "retrieval.documents",
         "value": {
          "arrayValue": {
           "values": [
            {
             "kvlistValue": {
              "values": [
               {
                "key": "document.id",
                "value": {
                 "stringValue": "kb-112"
                }
               },
               {
                "key": "document.score",
                "value": {
                 "doubleValue": 0.91
                }
               },
               {
                "key": "document.content",
                "value": {
                 "stringValue": "To reset the router, hold the reset button for 10 seconds."
                }
               }
              ]
             }
            },
            {
             "kvlistValue": {
              "values": [
               {
                "key": "document.id",
                "value": {
                 "stringValue": "kb-087"
                }
               },
               {
                "key": "document.score",
                "value": {
                 "doubleValue": 0.77
                }
               },
               {
                "key": "document.content",
                "value": {
                 "stringValue": "The status lights blink amber while the router restarts."
                }
               }
              ]
             }
            }
           ]
          }
         }
        },
        {
         "key": "db.system",
         "value": {
          "stringValue": "chroma"
         }
        }
       ],
       "endTimeUnixNano": "1732017600310000000",
       "events": [
        {
         "attributes": [
          {
           "key": "retrieval.count",
           "value": {
            "intValue": "2"
           }
          }
         ],
         "name": "retrieval.complete",
         "timeUnixNano": "1732017600300000000"
        }
       ],
       "kind": 1,
       "name": "VectorStoreRetriever",
       "parentSpanId": "00f067aa0ba902b7",
       "spanId": "53995c3f42cd8ad8",
       "startTimeUnixNano": "1732017600012000000",
       "traceId": "4bf92f3577b34da6a3ce929d0e0e4736"
      },
      {
       "attributes": [
        {
         "key": "openinference.span.kind",
         "value": {
          "stringValue": "LLM"
         }
        },
        {
         "key": "gen_ai.operation.name",
         "value": {
          "stringValue": "chat"
         }
        },
        {
         "key": "gen_ai.system",
         "value": {
          "stringValue": "openai"
         }
        },
        {
         "key": "gen_ai.provider.name",
         "value": {
          "stringValue": "openai"
         }
        },
        {
         "key": "gen_ai.request.model",
         "value": {
          "stringValue": "gpt-4o-mini"
         }
        },
        {
         "key": "gen_ai.request.temperature",
         "value": {
          "doubleValue": 0.2
         }
        },
        {
         "key": "gen_ai.request.max_tokens",
         "value": {
          "intValue": "512"
         }
        },
        {
         "key": "gen_ai.request.stop_sequences",
         "value": {
          "arrayValue": {
           "values": [
            {
             "stringValue": "\n\nUser:"
            }
           ]
          }
         }
        },
        {
         "key": "gen_ai.response.model",
         "value": {
          "stringValue": "gpt-4o-mini-2024-07-18"
         }
        },
        {
         "key": "gen_ai.response.id",
         "value": {
          "stringValue": "chatcmpl-AVb7rXj2Ql0"
         }
        },
        {
         "key": "gen_ai.response.finish_reasons",
         "value": {
          "arrayValue": {
           "values": [
            {
             "stringValue": "stop"
            }
           ]
          }
         }
        },
        {
         "key": "gen_ai.usage.input_tokens",
         "value": {
          "intValue": "412"
         }
        },
        {
         "key": "gen_ai.usage.output_tokens",
         "value": {
          "intValue": "38"
         }
        },
        {
         "key": "server.address",
         "value": {
          "stringValue": "api.openai.com"
         }
        },
        {
         "key": "server.port",
         "value": {
          "intValue": "443"
         }
        },
        {
         "key": "gen_ai.input.messages",
         "value": {
          "stringValue": "[{\"role\": \"system\", \"parts\": [{\"type\": \"text\", \"content\": \"Answer from the context.\"}]}, {\"role\": \"user\", \"parts\": [{\"type\": \"text\", \"content\": \"How do I reset my router?\"}]}]"
         }
        },
        {
         "key": "gen_ai.output.messages",
         "value": {
          "stringValue": "[{\"role\": \"assistant\", \"finish_reason\": \"stop\", \"parts\": [{\"type\": \"text\", \"content\": \"Hold the reset button for 10 seconds.\"}]}]"
         }
        },
        {
         "key": "llm.is_streaming",
         "value": {
          "boolValue": false
         }
        }
       ],
       "endTimeUnixNano": "1732017602810000000",
       "events": [
        {
         "attributes": [
          {
           "key": "gen_ai.response.time_to_first_token",
           "value": {
            "doubleValue": 0.48
           }
          }
         ],
         "name": "gen_ai.content.first_token",
         "timeUnixNano": "1732017600800000000"
        }
       ],
       "kind": 3,
       "links": [
        {
         "attributes": [
          {
           "key": "link.reason",
           "value": {
            "stringValue": "prompt-cache"
           }
          }
         ],
         "spanId": "b7ad6b7169203331",
         "traceId": "0af7651916cd43dd8448eb211c80319c",
         "traceState": "p=1"
        }
       ],
       "name": "chat gpt-4o-mini",
       "parentSpanId": "00f067aa0ba902b7",
       "spanId": "a2fb4a1d1a96d312",
       "startTimeUnixNano": "1732017600320000000",
       "status": {
        "code": 1
       },
       "traceId": "4bf92f3577b34da6a3ce929d0e0e4736",
       "traceState": "vendor=lanterna"
      }
     ]
    }
   ]
  }
 ]
}
