@ha @serial @needs-pbx-sim
@cap-high-availability
Feature: Several gateways behind Kamailio
  Our rcc-gateway as two processes behind real Kamailio, on exactly the configuration
  `rcc-gateway kamailio-config` prints for them (probes every second, out of rotation after
  one miss, an in-dialog keep-alive every 30 s). Each gateway has its own CSTA link to the PBX
  simulator, and the Front End pool routes the LineServerURI domain to the Kamailio node. The
  gateway holding a line is the one whose CSTA link monitors it at the PBX. These scenarios
  test our tier; with a vendor's gateway in the lab they are not applicable.

  Background:
    Given 2 gateways stand behind Kamailio

  Scenario: Every endpoint of a line lands on the gateway that monitors it
    Given alice is signed in
    And alice is also signed in on the laptop
    And bob is signed in
    And bob is also signed in on the laptop
    And carol is signed in
    Then every signed-in line is monitored exactly once
    And the gateway holds 5 sessions and 3 PBX monitors
    And alice's line and bob's line are on different gateways

  Scenario: The users of a killed gateway move; the others miss no event and see none twice
    Given alice is signed in
    And alice is also signed in on the laptop
    And bob is signed in
    Then alice's line and bob's line are on different gateways
    When the gateway holding alice's line dies
    And the outside caller +14255550200 calls bob
    Then bob sees a call from +14255550200
    When bob answers at the desk phone
    Then bob sees the call as established
    When every client refreshes its session
    Then alice signs in again
    And alice/laptop signs in again
    And bob signed in 1 time
    And alice's line is not on the killed gateway
    And every signed-in line is monitored exactly once
    And the gateway holds 3 sessions and 2 PBX monitors
    When bob hangs up at the desk phone
    Then bob sees the call as cleared
    And bob saw every event once
    When the outside caller +15550002 calls alice
    Then alice sees a call from +15550002
    And alice/laptop sees a call from +15550002

  Scenario: A call in progress on a moved line is picked up by a snapshot
    Given alice is signed in
    When the outside caller +14255550200 calls alice
    And alice answers at the desk phone
    Then alice sees the call as established
    When the gateway holding alice's line dies
    And alice refreshes the session
    Then alice signs in again
    And alice's line is not on the killed gateway
    When alice takes a snapshot of the line
    And alice hangs up from Lync
    Then the PBX has no call
    And alice sees the call as cleared

  Scenario: A restarted gateway gets none of the moved lines back
    Given alice is signed in
    And bob is signed in
    Then alice's line and bob's line are on different gateways
    When the gateway holding alice's line dies
    And every client refreshes its session
    Then alice signs in again
    When the killed gateway starts again
    And alice signs out
    And alice signs in
    And bob signs out
    And bob signs in
    Then the restarted gateway holds 0 sessions
    And every signed-in line is monitored exactly once

  Scenario: Draining a gateway moves nobody; new endpoints of its lines go elsewhere
    Given alice is signed in
    And bob is signed in
    Then alice's line and bob's line are on different gateways
    When the gateway holding alice's line drains
    And every client refreshes its session
    Then alice signed in 1 time
    And alice's line is still on the draining gateway
    When carol signs in
    Then carol's line is not on the draining gateway
    # A draining gateway takes no new session, not even on a line it monitors: the laptop
    # goes to another gateway, which takes the line over (a second monitor until the desk
    # endpoint's session ends).
    When alice signs in on the laptop
    Then alice's line is also monitored by another gateway
    And the draining gateway holds 1 session
    When alice signs out
    Then every signed-in line is monitored exactly once
    And alice's line is not on the draining gateway
    And the draining gateway holds 0 sessions

  Scenario: A gateway without its PBX link takes no new line, and keeps its sessions
    Given alice is signed in
    And bob is signed in
    Then alice's line and bob's line are on different gateways
    When the gateway holding alice's line loses its PBX link
    And carol signs in
    Then carol's line is not on the cut gateway
    When every client refreshes its session
    Then alice signed in 1 time
    And the cut gateway holds 1 session

  Scenario: Kamailio relays nobody but the Front End
    Given alice is signed in
    Then Kamailio refuses a sign-in from 127.0.0.9 with 403
    And the gateway holds 1 session and 1 PBX monitor

  Scenario: With every gateway down a sign-in gets 503 with Retry-After, not a timeout
    When every gateway dies
    And alice tries to sign in
    Then alice's sign-in is answered 503 with Retry-After 0
    And alice's sign-in is answered 503 with Retry-After 10

  Scenario: A Kamailio restart loses no session and no event
    Given alice is signed in
    And bob is signed in
    When the outside caller +14255550200 calls alice
    Then alice sees a call from +14255550200
    When +14255550200 hangs up
    And Kamailio restarts
    And every client refreshes its session
    Then alice signed in 1 time
    And bob signed in 1 time
    When the outside caller +15550002 calls alice
    Then alice sees a call from +15550002

  Scenario: Over mutual TLS from the Front End, events and a Kamailio restart too
    Given 2 gateways stand behind Kamailio, reached over mutual TLS
    And alice is signed in
    When the outside caller +14255550200 calls alice
    Then alice sees a call from +14255550200
    When +14255550200 hangs up
    And Kamailio restarts
    And every client refreshes its session
    Then alice signed in 1 time
    When the outside caller +15550002 calls alice
    Then alice sees a call from +15550002

  # The probes (every second here) find the dead gateway: Kamailio ends each of its dialogs at
  # once with a BYE, and Lync signs in again. Without it a silent client would wait for its own
  # refresh, up to 25 minutes.
  Scenario: The silent clients of a killed gateway get a BYE and move within seconds
    Given alice is signed in
    And bob is signed in
    Then alice's line and bob's line are on different gateways
    When the gateway holding alice's line dies
    Then alice signs in again within 25 seconds
    And alice's line is not on the killed gateway
    And bob signed in 1 time
    And every signed-in line is monitored exactly once

  # A gateway restarted faster than its probes notice keeps its place in rotation but lost its
  # sessions: Kamailio's in-dialog OPTIONS every 30 s get 481, and the dialog ends with a BYE
  # about 10 s later (if a probe did catch the restart, the BYE comes sooner).
  @slow
  Scenario: The clients of a gateway that restarted at once get a BYE from the keep-alive
    Given alice is signed in
    And bob is signed in
    Then alice's line and bob's line are on different gateways
    When the gateway holding alice's line restarts at once
    Then alice signs in again within 90 seconds
    And bob signed in 1 time
    And every signed-in line is monitored exactly once
