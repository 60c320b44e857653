@needs-pidgin-sipe
@cap-real-client
Feature: A real pidgin-sipe client
  The real pidgin-sipe (Debian's package, hosted by tools/sipe-host) signs in at the simulated
  pool's client port, which routes its RCC dialog to the gateway under test as Lync does. It
  never answers event INFOs, sends in-dialog requests without a Via branch and starts CSeq
  again at 1 after each refresh; its events must arrive anyway, promptly and in order.
  RCC_LAB_WITHOUT_SIPE=1 leaves these scenarios out (not applicable, with that reason).

  Scenario: A pidgin-sipe client signs in and dials
    When alice signs in with the real pidgin-sipe
    Then the gateway holds 1 session and 1 PBX monitor
    When alice dials bob on pidgin-sipe
    Then bob's desk phone rings
    And alice's pidgin-sipe gets the Originated event
    And alice's pidgin-sipe gets the Delivered event
    When bob answers at the desk phone
    Then alice's pidgin-sipe gets the Established event
    When bob hangs up at the desk phone
    Then alice's pidgin-sipe gets the ConnectionCleared event
    # More events than the gateway's event window: none waits for an answer sipe never sends.
    When alice dials carol on pidgin-sipe
    Then carol's desk phone rings
    When carol answers at the desk phone
    Then alice's pidgin-sipe gets the Established event
    When carol hangs up at the desk phone
    Then alice's pidgin-sipe gets the ConnectionCleared event

  @needs-pbx-sim
  Scenario: pidgin-sipe survives a PBX link loss
    When alice signs in with the real pidgin-sipe
    Then the gateway holds 1 session and 1 PBX monitor
    When the PBX link drops
    Then the gateway restores the PBX monitors
    When alice dials bob on pidgin-sipe
    Then bob's desk phone rings
    When bob answers at the desk phone
    Then alice's pidgin-sipe gets the Established event

  @needs-gateway-in-process
  Scenario: pidgin-sipe after the gateway restarts
    When alice signs in with the real pidgin-sipe
    And the gateway restarts
    Then the gateway holds 0 sessions and 0 PBX monitors
    # sipe keeps its dead RCC dialog: the restarted gateway answers its request 481, and sipe
    # does not open a new session by itself (its RCC is opened once per sign-in).
    When alice dials bob on pidgin-sipe
    Then alice's pidgin-sipe request is answered 481
    When alice signs in again with the real pidgin-sipe
    Then the gateway holds 1 session and 1 PBX monitor
    When alice dials bob on pidgin-sipe
    Then bob's desk phone rings
    And alice's pidgin-sipe gets the Delivered event
