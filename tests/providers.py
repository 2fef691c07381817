"""Payment providers as the tests play them: keys, and notifications signed as each documents."""
import base64
import hashlib
import hmac
import json

import secrets
import time
import urllib.parse
from dataclasses import dataclass

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM


def new_key():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def write_public(key, path) -> str:
    path.write_bytes(key.public_key().public_bytes(serialization.Encoding.PEM,
                                                   serialization.PublicFormat.SubjectPublicKeyInfo))
    return str(path)


def write_private(key, path) -> str:
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                       serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))
    return str(path)


def rsa2(key, message: str) -> str:
    return base64.b64encode(key.sign(message.encode(), padding.PKCS1v15(),
                                     hashes.SHA256())).decode()


@dataclass
class Providers:
    """The providers' own keys (they sign notifications) and our merchant key."""

    alipay_key: object
    merchant_key: object
    wechat_key: object
    unionpay_key: object
    apiv3_key: str
    sandbox_secret: str
    wechat_merchant_key: object  # ours, for WeChat Pay API v3 calls
    unionpay_merchant_key: object  # ours, for the UnionPay gateway
    alipay_app_id: str = "2021000000000001"
    wechat_mchid: str = "1900000001"
    unionpay_mer_id: str = "777290058110048"

    @classmethod
    def generate(cls, sandbox_secret: str) -> "Providers":
        return cls(new_key(), new_key(), new_key(), new_key(), secrets.token_hex(16),
                   sandbox_secret, new_key(), new_key())

    def settings(self, folder) -> dict:
        """The rtserver flags that hold these keys."""
        return dict(
            alipay_app_id=self.alipay_app_id,
            alipay_public_key_file=write_public(self.alipay_key, folder / "alipay_public.pem"),
            alipay_private_key_file=write_private(self.merchant_key, folder / "merchant.pem"),
            wechat_mchid=self.wechat_mchid, wechat_apiv3_key=self.apiv3_key,
            wechat_platform_public_key_file=write_public(self.wechat_key, folder / "wechat.pem"),
            unionpay_public_key_file=write_public(self.unionpay_key, folder / "unionpay.pem"),
            unionpay_mer_id=self.unionpay_mer_id,
        )

    wechat_appid: str = "wxd678efh567hg6787"
    wechat_merchant_serial: str = "4D6BB1E1D55C8A0E66C0F7A3B5E4C3D2A1B0C9F8"
    wechat_platform_serial: str = "5157F09EFDC096DE15EBE81A47057A7232F1B8E1"  # of wechat_key
    unionpay_cert_id: str = "69042905377"

    def round_trip_settings(self, folder, wechat: str, alipay: str, unionpay: str,
                            public_url: str) -> dict:
        """The flags that make rtserver call the providers, at these stand-ins' base URLs."""
        return dict(
            public_url=public_url, refund_to="original",
            wechat_appid=self.wechat_appid, wechat_merchant_serial=self.wechat_merchant_serial,
            wechat_merchant_private_key_file=write_private(self.wechat_merchant_key,
                                                           folder / "wechat_merchant.pem"),
            wechat_api_base=wechat, alipay_gateway=alipay + "/gateway.do",
            unionpay_private_key_file=write_private(self.unionpay_merchant_key,
                                                    folder / "unionpay_merchant.pem"),
            unionpay_cert_id=self.unionpay_cert_id, unionpay_gateway=unionpay,
        )

    # Each returns (headers, body) of one asynchronous notification.

    def alipay(self, out_trade_no: str, amount: str, trade_no: str | None = None,
               status: str = "TRADE_SUCCESS", key=None, **extra):
        fields = {"notify_time": time.strftime("%Y-%m-%d %H:%M:%S"), "notify_type":
                  "trade_status_sync", "notify_id": secrets.token_hex(8),
                  "app_id": self.alipay_app_id, "charset": "utf-8", "version": "1.0",
                  "trade_no": trade_no or "2026" + secrets.token_hex(8),
                  "out_trade_no": out_trade_no, "total_amount": amount, "trade_status": status,
                  "subject": "红包", **extra}
        signed = "&".join(f"{k}={v}" for k, v in sorted(fields.items()))
        fields.update(sign=rsa2(key or self.alipay_key, signed), sign_type="RSA2")
        return ({"Content-Type": "application/x-www-form-urlencoded"},
                urllib.parse.urlencode(fields).encode())

    def wechat(self, out_trade_no: str, total_fen: int, transaction_id: str | None = None,
               state: str = "SUCCESS", key=None, mchid=None, timestamp: int | None = None,
               apiv3_key: str | None = None):
        transaction = {"mchid": mchid or self.wechat_mchid, "appid": "wxd678efh567hg6787",
                       "out_trade_no": out_trade_no,
                       "transaction_id": transaction_id or "4200" + secrets.token_hex(8),
                       "trade_type": "APP", "trade_state": state,
                       "amount": {"total": total_fen, "payer_total": total_fen,
                                  "currency": "CNY"}}
        return self.wechat_event("TRANSACTION.SUCCESS", "支付成功", "transaction", transaction,
                                 key, timestamp, apiv3_key)

    def wechat_refund(self, out_trade_no: str, out_refund_no: str, refund_fen: int,
                      total_fen: int, refund_id: str | None = None, status: str = "SUCCESS",
                      event_type: str | None = None, key=None, mchid=None,
                      timestamp: int | None = None, apiv3_key: str | None = None):
        """A refund's notification (退款结果通知): REFUND.SUCCESS, .ABNORMAL or .CLOSED."""
        refund = {"mchid": mchid or self.wechat_mchid, "out_trade_no": out_trade_no,
                  "transaction_id": "4200" + secrets.token_hex(8), "out_refund_no": out_refund_no,
                  "refund_id": refund_id or "50" + secrets.token_hex(10),
                  "refund_status": status, "user_received_account": "支付用户零钱",
                  "amount": {"total": total_fen, "refund": refund_fen, "payer_total": total_fen,
                             "payer_refund": refund_fen}}
        if status == "SUCCESS":
            refund["success_time"] = time.strftime("%Y-%m-%dT%H:%M:%S+08:00")
        return self.wechat_event(event_type or f"REFUND.{status}",
                                 {"SUCCESS": "退款成功", "ABNORMAL": "退款异常",
                                  "CLOSED": "退款关闭"}.get(status, "退款"), "refund", refund,
                                 key, timestamp, apiv3_key)

    def wechat_event(self, event_type: str, summary: str, original_type: str, resource: dict,
                     key=None, timestamp: int | None = None, apiv3_key: str | None = None):
        """(headers, body) of a WeChat Pay notification: the resource sealed with the API v3
        key (AEAD_AES_256_GCM), the whole signed with the platform key."""
        nonce = secrets.token_hex(6)
        ciphertext = AESGCM((apiv3_key or self.apiv3_key).encode()).encrypt(
            nonce.encode(), json.dumps(resource, ensure_ascii=False).encode(),
            original_type.encode())
        body = json.dumps({
            "id": secrets.token_hex(8), "create_time": "2026-11-25T10:00:00+08:00",
            "resource_type": "encrypt-resource", "event_type": event_type,
            "summary": summary, "resource": {
                "algorithm": "AEAD_AES_256_GCM", "ciphertext": base64.b64encode(ciphertext).decode(),
                "associated_data": original_type, "original_type": original_type,
                "nonce": nonce}})
        stamp = str(timestamp or int(time.time()))
        header_nonce = secrets.token_hex(16)
        signature = rsa2(key or self.wechat_key, f"{stamp}\n{header_nonce}\n{body}\n")
        return ({"Content-Type": "application/json", "Wechatpay-Timestamp": stamp,
                 "Wechatpay-Nonce": header_nonce, "Wechatpay-Signature": signature,
                 "Wechatpay-Serial": self.wechat_platform_serial,
                 "Wechatpay-Signature-Type": "WECHATPAY2-SHA256-RSA2048"}, body.encode())

    def unionpay(self, out_trade_no: str, total_fen: int, query_id: str | None = None,
                 resp_code: str = "00", key=None, mer_id: str | None = None,
                 txn_type: str = "01"):
        return self._unionpay_note(key, orderId=out_trade_no, txnType=txn_type,
                                   merId=mer_id or self.unionpay_mer_id, txnAmt=str(total_fen),
                                   queryId=query_id or secrets.token_hex(10), respCode=resp_code)

    def unionpay_refund(self, out_refund_no: str, refund_fen: int, orig_query_id: str,
                        query_id: str | None = None, resp_code: str = "00", key=None,
                        mer_id: str | None = None):
        """The back notification of a refund (退货, txnType 04) that ended."""
        return self._unionpay_note(key, orderId=out_refund_no, txnType="04", txnSubType="00",
                                   merId=mer_id or self.unionpay_mer_id, txnAmt=str(refund_fen),
                                   origQryId=orig_query_id, respCode=resp_code,
                                   queryId=query_id or secrets.token_hex(10))

    def _unionpay_note(self, key, **fields):
        fields = {"version": "5.1.0", "encoding": "UTF-8", "signMethod": "01",
                  "respMsg": "成功", "txnTime": time.strftime("%Y%m%d%H%M%S"), **fields}
        digest = hashlib.sha256("&".join(f"{k}={v}" for k, v in sorted(fields.items()))
                                .encode()).hexdigest()
        fields["signature"] = rsa2(key or self.unionpay_key, digest)
        return ({"Content-Type": "application/x-www-form-urlencoded"},
                urllib.parse.urlencode(fields).encode())

    def sandbox(self, out_trade_no: str, amount: str, trade_no: str | None = None,
                status: str = "SUCCESS", secret: str | None = None):
        body = json.dumps({"out_trade_no": out_trade_no, "trade_no": trade_no or
                           "SBX" + secrets.token_hex(6), "amount": amount,
                           "status": status}).encode()
        signature = hmac.new((secret or self.sandbox_secret).encode(), body,
                             hashlib.sha256).hexdigest()
        return {"X-Sandbox-Signature": signature, "Content-Type": "application/json"}, body



