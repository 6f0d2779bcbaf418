#ifndef FERRY_CLIENT_H
#define FERRY_CLIENT_H
#endif
